"""The option layer of `edvr train` (edvr_lib.train.options): BasicSR's option files, checked and resolved.

Fast, CPU only, no torch and no training.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edvr_lib.train.options import (MOVED, OptionsError, apply_overrides, dump_options, load_options,
                                    options_fingerprint, validate_options)
from edvr_lib.utils import EDVRError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OFFICIAL = ["train_EDVR_M_x4_SR_REDS_woTSA.yml", "train_EDVR_M_x4_SR_REDS.yml", "train_EDVR_L_x4_SR_REDS_woTSA.yml",
            "train_EDVR_L_x4_SR_REDS.yml"]
TINY = CONFIGS / "train_EDVR_tiny_embedded.yml"

# Every key (dotted, leaves) that BasicSR's four EDVR option files contain, across the four.
OFFICIAL_KEYS = sorted("""
name model_type scale num_gpu manual_seed
datasets.train.name datasets.train.type datasets.train.dataroot_gt datasets.train.dataroot_lq
datasets.train.dataroot_flow datasets.train.meta_info_file datasets.train.val_partition datasets.train.io_backend.type
datasets.train.num_frame datasets.train.gt_size datasets.train.interval_list datasets.train.random_reverse
datasets.train.use_hflip datasets.train.use_rot datasets.train.use_shuffle datasets.train.num_worker_per_gpu
datasets.train.batch_size_per_gpu datasets.train.dataset_enlarge_ratio datasets.train.prefetch_mode
datasets.val.name datasets.val.type datasets.val.dataroot_gt datasets.val.dataroot_lq datasets.val.meta_info_file
datasets.val.io_backend.type datasets.val.cache_data datasets.val.num_frame datasets.val.padding
network_g.ema_decay network_g.type network_g.num_in_ch network_g.num_out_ch network_g.num_feat network_g.num_frame
network_g.deformable_groups network_g.num_extract_block network_g.num_reconstruct_block network_g.center_frame_idx
network_g.hr_in network_g.with_predeblur network_g.with_tsa
path.pretrain_network_g path.strict_load_g path.resume_state
train.ema_decay train.optim_g.type train.optim_g.lr train.optim_g.weight_decay train.optim_g.betas
train.scheduler.type train.scheduler.periods train.scheduler.restart_weights train.scheduler.eta_min
train.total_iter train.warmup_iter train.tsa_iter train.dcn_lr_mul
train.pixel_opt.type train.pixel_opt.loss_weight train.pixel_opt.reduction
val.val_freq val.save_img val.metrics.psnr.type val.metrics.psnr.crop_border val.metrics.psnr.test_y_channel
logger.print_freq logger.save_checkpoint_freq logger.use_tb_logger logger.wandb.project logger.wandb.resume_id
dist_params.backend dist_params.port find_unused_parameters
""".split())

IGNORED_ALWAYS = {"ignored: dist_params (one process, no distributed launcher)",
                  "ignored: datasets.train.dataroot_flow (EDVR reads no optical flow)",
                  "ignored: logger.wandb (Weights & Biases is not used here; use_tb_logger writes TensorBoard logs)"}
FIND_UNUSED = "ignored: find_unused_parameters (one process, no DistributedDataParallel)"
EMA_MOVED = ("moved network_g.ema_decay to train.ema_decay (reference bug: BasicSR's EDVR-L files put ema_decay under "
             "network_g, whose keys all go to EDVR(); it belongs to train)")


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.update(_leaves(value, dotted) if isinstance(value, dict) else {dotted: value})
    return out


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _write(tmp_path: Path, raw: dict, name: str = "opt.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _error(fn, *args, **kwargs) -> str:
    """Run ``fn``, expect an OptionsError with a one-line message, return it."""
    with pytest.raises(OptionsError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert isinstance(info.value, EDVRError)
    return message


def _tiny_with(tmp_path: Path, **changes) -> Path:
    """The tiny config with dotted keys set (value ``...`` deletes the key)."""
    raw = _raw(TINY)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return _write(tmp_path, raw)


# ----------------------------------------------------------------------------------------------- official files


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_files_load_with_expected_notes(name):
    opt, notes = load_options(CONFIGS / name)
    expected = set(IGNORED_ALWAYS)
    if "woTSA" not in name:
        expected.add(FIND_UNUSED)
    if "_L_" in name:
        expected.add(EMA_MOVED)
    assert set(notes) == expected
    assert opt.train.ema_decay == 0.999 and "ema_decay" not in opt.network_g.to_dict()
    net, tr = opt.network_g, opt.train
    assert (net.num_feat, net.num_reconstruct_block) == ((128, 40) if "_L_" in name else (64, 10))
    assert net.with_tsa == ("woTSA" not in name)
    assert tr.tsa_iter == (0 if "woTSA" in name else 50000)
    assert tr.total_iter == 600000 == sum(tr.scheduler.periods)
    assert tr.optim_g.to_dict() == {"type": "Adam", "lr": 4e-4, "weight_decay": 0.0, "betas": [0.9, 0.99]}
    assert tr.pixel_opt.to_dict() == {"type": "CharbonnierLoss", "loss_weight": 1.0, "reduction": "sum", "eps": 1e-12}
    assert opt.val.val_freq == 5000 and opt.logger.save_checkpoint_freq == 5000  # `!!float 5e3`
    assert opt.datasets.train.dataroot_gt == "datasets/REDS/train_sharp"
    assert opt.path.strict_load_g == ("woTSA" in name)
    validate_options(opt)


def test_official_files_contain_exactly_the_listed_keys():
    found = set()
    for name in OFFICIAL:
        found |= set(_leaves(_raw(CONFIGS / name)))
    assert sorted(found) == OFFICIAL_KEYS


@pytest.mark.parametrize("key", OFFICIAL_KEYS)
def test_every_official_key_is_accepted_and_settable(key):
    # Loading the four files (above) accepts every key; here each one can also be set with an override, from a file
    # that lacks it.
    source = next(_raw(CONFIGS / n) for n in OFFICIAL if key in _leaves(_raw(CONFIGS / n)))
    value = _leaves(source)[key]
    holder = source
    for part in key.split(".")[:-1]:
        holder = holder[part]
    del holder[key.rpartition(".")[2]]
    assert key not in _leaves(source)
    changed = apply_overrides(source, [f"{key}={json.dumps(value)}"])
    validate_options(changed)  # raises OptionsError if the key or its value were refused
    assert _leaves(changed)[MOVED.get(key, (key,))[0]] == value  # an old name lands in its new place


def test_resolved_options_have_every_schema_section():
    opt, _ = load_options(CONFIGS / OFFICIAL[1])
    assert list(opt.to_dict()) == ["name", "model_type", "scale", "num_gpu", "manual_seed", "datasets", "network_g",
                                   "path", "train", "val", "logger"]  # BasicSR's sections, in its order
    assert opt.path.to_dict() == {
        "pretrain_network_g": "experiments/101_EDVR_M_x4_SR_REDS_woTSA_600k_B4G8_valREDS4_wandb/"
                              "models/net_g_600000.pth",
        "strict_load_g": False, "param_key_g": "params", "resume_state": None}
    assert opt.train.grad_clip is None and opt.train.amp is None
    assert opt.train.guard.to_dict() == {"enabled": False, "max_retries": 3, "lr_factor": 0.5, "offset_limit": 50.0}
    assert opt.datasets.train.phase == "train" and opt.datasets.val.phase == "val"
    assert opt.num_gpu == 8


def test_tiny_config_loads_without_notes_and_points_at_the_embedded_build():
    opt, notes = load_options(TINY)
    assert notes == []
    train, val = opt.datasets.train, opt.datasets.val
    assert train.dataroot_gt == val.dataroot_gt == "data/embedded/full/GT"
    assert train.dataroot_lq == val.dataroot_lq == "data/embedded/full/LR_bicubic_x4"
    assert train.meta_info_file == "data/embedded/full/meta_info_embedded_train_GT.txt"
    assert val.meta_info_file == "data/embedded/full/meta_info_embedded_test_GT.txt"
    assert train.val_partition is None and train.gt_size == 64 and train.batch_size_per_gpu == 8
    assert opt.network_g.num_feat % opt.network_g.deformable_groups == 0
    assert set(opt.val.metrics) == {"psnr", "ssim"}
    assert opt.train.guard.enabled is False and opt.train.grad_clip is None


def test_tiny_config_paths_match_the_embedded_layout():
    from edvr_lib.data import embedded

    root = Path("data/embedded") / embedded.FULL_SPEC.variant
    opt, _ = load_options(TINY)
    train = opt.datasets.train
    assert Path(train.dataroot_gt) == root / embedded.GT_DIR
    assert Path(train.dataroot_lq) == root / embedded.LQ_DIR
    assert Path(train.meta_info_file) == root / embedded.META_TRAIN
    assert Path(opt.datasets.val.meta_info_file) == root / embedded.META_TEST


# ----------------------------------------------------------------------------------------------- errors


def test_typo_names_the_nearest_valid_key(tmp_path):
    raw = _raw(TINY)
    raw["train"]["optim_g"]["lrr"] = raw["train"]["optim_g"].pop("lr")
    message = _error(load_options, _write(tmp_path, raw))
    assert "unknown option train.optim_g.lrr" in message and "nearest valid key: train.optim_g.lr" in message

    raw = _raw(TINY)
    raw["network_g"]["num_feats"] = raw["network_g"].pop("num_feat")
    assert "nearest valid key: network_g.num_feat" in _error(load_options, _write(tmp_path, raw))


def test_key_in_the_wrong_section_names_where_it_belongs(tmp_path):
    raw = _raw(TINY)
    raw["train"]["use_hflip"] = True
    message = _error(load_options, _write(tmp_path, raw))
    assert "unknown option train.use_hflip" in message and "datasets.train.use_hflip" in message


@pytest.mark.parametrize("key, value, words", [
    ("network_g__num_feat", "abc", ["network_g.num_feat", "'abc'", "an integer"]),
    ("datasets__train__use_hflip", "maybe", ["datasets.train.use_hflip", "'maybe'", "true or false"]),
    ("train__scheduler__periods", 1000, ["train.scheduler.periods", "1000", "a list of integers"]),
    ("train__optim_g__lr", "fast", ["train.optim_g.lr", "'fast'", "a number > 0"]),
    ("network_g__with_tsa", None, ["network_g.with_tsa", "~", "true or false"]),
    ("num_gpu", "all", ["num_gpu", "'all'", "'auto' or an integer >= 0"]),
])
def test_wrong_type(tmp_path, key, value, words):
    message = _error(load_options, _tiny_with(tmp_path, **{key: value}))
    assert all(w in message for w in words), message


@pytest.mark.parametrize("key, value, words", [
    ("train__ema_decay", 1.5, ["train.ema_decay = 1.5", "in [0, 1)"]),
    ("train__optim_g__lr", -0.1, ["train.optim_g.lr = -0.1", "> 0"]),
    ("train__optim_g__betas", [0.9, 1.2], ["train.optim_g.betas", "each in [0, 1)"]),
    ("datasets__train__batch_size_per_gpu", 0, ["datasets.train.batch_size_per_gpu = 0", ">= 1"]),
    ("datasets__train__num_worker_per_gpu", -1, ["datasets.train.num_worker_per_gpu = -1", ">= 0"]),
    ("datasets__train__gt_size", 100, ["datasets.train.gt_size = 100", "a multiple of 16"]),
    ("datasets__train__io_backend", {"type": "memcached"}, ["datasets.train.io_backend.type", "'disk', 'lmdb'"]),
    ("datasets__val__padding", "zeros", ["datasets.val.padding = 'zeros'", "'reflection_circle'"]),
    ("network_g__num_frame", 4, ["network_g.num_frame = 4", "odd"]),
    ("network_g__num_feat", 30, ["network_g.num_feat = 30", "multiple of network_g.deformable_groups (8)"]),
    ("train__total_iter", 5000, ["train.total_iter = 5000", "sum(train.scheduler.periods) = 3000"]),
    ("train__scheduler__restart_weights", [1], ["train.scheduler.restart_weights", "2 values"]),
    ("train__tsa_iter", 3000, ["train.tsa_iter = 3000", "< train.total_iter (3000)"]),
    ("train__amp", "fp8", ["train.amp = 'fp8'", "'bf16', 'fp16'"]),
    ("train__grad_clip", 0, ["train.grad_clip = 0", "> 0 or ~"]),
    ("train__guard__lr_factor", 1.0, ["train.guard.lr_factor = 1.0", "in (0, 1)"]),
    ("train__pixel_opt__reduction", "none", ["train.pixel_opt.reduction = 'none'", "'mean', 'sum'"]),
    ("train__optim_g__type", "SGD", ["train.optim_g.type = 'SGD'", "Adam"]),
    ("val__val_freq", 0, ["val.val_freq = 0", ">= 1"]),
    ("val__metrics", {"psnr": {"type": "calculate_lpips"}}, ["val.metrics.psnr.type", "calculate_psnr"]),
    ("path__resume_state", "old/state.pth", ["path.resume_state", "--resume"]),
])
def test_out_of_range(tmp_path, key, value, words):
    message = _error(load_options, _tiny_with(tmp_path, **{key: value}))
    assert all(w in message for w in words), message
    assert "Fix:" in message


def test_tsa_iter_needs_tsa(tmp_path):
    path = _tiny_with(tmp_path, network_g__with_tsa=False, train__tsa_iter=100)
    assert "network_g.with_tsa is false" in _error(load_options, path)


def test_offset_fidelity_is_off_by_default_and_needs_a_dataset_with_flow(tmp_path):
    assert load_options(TINY)[0].train.offset_opt is None
    path = _tiny_with(tmp_path, train__offset_opt={"loss_weight": 1.0})
    message = _error(load_options, path)
    assert "train.offset_opt.type" in message and "MotionWindowDataset" in message
    bad = _tiny_with(tmp_path, train__offset_opt={"threshold": -1})
    assert "train.offset_opt.threshold" in _error(load_options, bad)


def test_missing_required_key(tmp_path):
    message = _error(load_options, _tiny_with(tmp_path, train__total_iter=...))
    assert "missing option train.total_iter" in message and "override 'train.total_iter=" in message
    assert "missing option name" in _error(load_options, _tiny_with(tmp_path, name=...))
    assert "missing option datasets.train" in _error(load_options, _tiny_with(tmp_path, datasets__train=...))


def test_bad_files(tmp_path):
    assert "option file not found" in _error(load_options, tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\ntrain: [1, 2\n")
    assert "cannot read" in _error(load_options, bad) and "line" in _error(load_options, bad)
    dup = tmp_path / "dup.yml"
    dup.write_text(TINY.read_text() + "\nname: again\n")
    message = _error(load_options, dup)
    assert "duplicate key 'name'" in message and "line" in message
    listed = tmp_path / "list.yml"
    listed.write_text("- 1\n- 2\n")
    assert "a mapping" in _error(load_options, listed)


# ----------------------------------------------------------------------------------------------- overrides


def test_set_overrides_nested_lists_null_booleans():
    opt, _ = load_options(TINY, ["train.optim_g.lr=2e-4",  # YAML 1.1 reads 2e-4 as a string: made a number
                                 "train.scheduler.periods=[500, 500]", "train.scheduler.restart_weights=[1, 1]",
                                 "train.total_iter=1000", "network_g.with_tsa=false", "datasets.val=null",
                                 "path.pretrain_network_g=~", "train:ema_decay=0.5", "train.grad_clip=1.0e+3",
                                 "val.metrics={psnr: {type: calculate_psnr, test_y_channel: true}}"])
    assert opt.train.optim_g.lr == 2e-4 and isinstance(opt.train.optim_g.lr, float)
    assert opt.train.scheduler.periods == [500, 500] and opt.train.total_iter == 1000
    assert opt.network_g.with_tsa is False
    assert opt.datasets.val is None and opt.val is None  # the val block is dropped with a note
    assert opt.train.ema_decay == 0.5 and opt.train.grad_clip == 1000.0


def test_set_on_a_file_value_and_a_new_key():
    raw = _raw(TINY)
    out = apply_overrides(raw, ["datasets.train.gt_size=128", "train.amp=bf16", "logger.wandb.project=x"])
    assert out["datasets"]["train"]["gt_size"] == 128 and out["train"]["amp"] == "bf16"
    assert raw["datasets"]["train"]["gt_size"] == 64  # the input is not modified
    opt, notes = load_options(TINY, ["train.amp=bf16", "logger.wandb.project=x"])
    assert opt.train.amp == "bf16" and any(n.startswith("ignored: logger.wandb") for n in notes)


def test_set_unknown_key_names_the_nearest():
    message = _error(load_options, TINY, ["train.optim_g.learning_rte=1e-4"])
    assert message.startswith("override 'train.optim_g.learning_rte=1e-4': unknown option train.optim_g.learning_rte")
    assert "nearest valid key" in message
    message = _error(apply_overrides, {}, ["network_g.num_feet=16"])
    assert "nearest valid key: network_g.num_feat" in message
    assert "KEY=VALUE" in _error(apply_overrides, {}, ["train.total_iter"])
    assert "not valid YAML" in _error(apply_overrides, {}, ["train.scheduler.periods=[1, 2"])


def test_set_checks_the_value_on_load():
    message = _error(load_options, TINY, ["datasets.train.batch_size_per_gpu=0"])
    assert "datasets.train.batch_size_per_gpu = 0" in message


# ----------------------------------------------------------------------------------------------- relocations


def test_ema_decay_relocation_and_conflict():
    opt, notes = load_options(CONFIGS / "train_EDVR_L_x4_SR_REDS.yml")
    assert opt.train.ema_decay == 0.999 and EMA_MOVED in notes
    opt, notes = load_options(CONFIGS / "train_EDVR_L_x4_SR_REDS.yml", ["train.ema_decay=0.9"])
    assert opt.train.ema_decay == 0.9
    assert any(n.startswith("dropped network_g.ema_decay = 0.999: train.ema_decay = 0.9 is set") for n in notes)
    opt, _ = load_options(CONFIGS / "train_EDVR_L_x4_SR_REDS.yml", ["network_g.ema_decay=0.5"])  # old place
    assert opt.train.ema_decay == 0.5 and "ema_decay" not in opt.network_g.to_dict()


def test_older_basicsr_names_are_moved(tmp_path):
    raw = _raw(TINY)
    raw["datasets"]["train"]["use_flip"] = raw["datasets"]["train"].pop("use_hflip")
    raw["path"] = {"pretrain_model_g": "w.pth", "strict_load": False}
    opt, notes = load_options(_write(tmp_path, raw))
    assert opt.datasets.train.use_hflip is True
    assert opt.path.pretrain_network_g == "w.pth" and opt.path.strict_load_g is False
    assert "moved datasets.train.use_flip to datasets.train.use_hflip (older BasicSR name)" in notes


def test_notes_for_defaults_and_ignored_values(tmp_path):
    opt, notes = load_options(_tiny_with(tmp_path, manual_seed=..., datasets__train__prefetch_mode="cuda"))
    assert opt.manual_seed == 10
    assert "manual_seed not set: using 10 (BasicSR would draw a random seed)" in notes
    assert opt.datasets.train.prefetch_mode == "cuda"
    assert any("datasets.train.prefetch_mode = 'cuda'" in n for n in notes)


# ----------------------------------------------------------------------------------------------- validation


def test_missing_val_means_no_validation(tmp_path):
    opt, notes = load_options(_tiny_with(tmp_path, datasets__val=..., val=...))
    assert opt.datasets.val is None and opt.val is None and notes == []
    opt, notes = load_options(_tiny_with(tmp_path, datasets__val=...))
    assert opt.val is None and "ignored: val (no datasets.val, so no validation)" in notes
    opt, _ = load_options(_tiny_with(tmp_path, val=...))  # a validation set without settings: defaults
    assert opt.val.to_dict() == {"val_freq": 5000, "save_img": False,
                          "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 0, "test_y_channel": False}}}


def test_validate_options_on_a_changed_resolved_dict():
    opt, _ = load_options(TINY)
    validate_options(opt)
    opt.network_g.deformable_groups = 5
    assert "network_g.num_feat = 32" in _error(validate_options, opt)


# ----------------------------------------------------------------------------------------------- dump, fingerprint


@pytest.mark.parametrize("name", OFFICIAL + [TINY.name])
def test_dump_load_round_trip(tmp_path, name):
    opt, _ = load_options(CONFIGS / name)
    written = dump_options(opt, tmp_path / "run" / "options.yml")
    assert written == tmp_path / "run" / "options.yml"
    again, notes = load_options(written)
    assert again == opt and notes == []
    assert options_fingerprint(again) == options_fingerprint(opt)
    assert sorted(p.name for p in written.parent.iterdir()) == ["options.yml"]  # no temporary file left


def test_dump_without_validation(tmp_path):
    opt, _ = load_options(TINY, ["datasets.val=~"])
    again, _ = load_options(dump_options(opt, tmp_path / "o.yml"))
    assert again.datasets.val is None and again.val is None


def test_fingerprint_ignores_paths_and_loading_but_not_the_recipe():
    base = options_fingerprint(load_options(TINY)[0])
    assert len(base) == 64
    same = load_options(TINY, ["datasets.train.dataroot_gt=/elsewhere/GT", "datasets.train.dataroot_lq=/elsewhere/LQ",
                               "datasets.train.meta_info_file=~", "datasets.train.num_worker_per_gpu=0",
                               "datasets.train.io_backend.type=lmdb", "datasets.train.name=moved", "name=renamed",
                               "datasets.val=~", "logger.print_freq=1", "path.pretrain_network_g=x.pth"])[0]
    assert options_fingerprint(same) == base
    assert options_fingerprint(_raw(TINY)) == base  # raw and resolved alike
    for change in ("train.optim_g.lr=2e-4", "network_g.num_feat=64", "datasets.train.gt_size=128", "manual_seed=1",
                   "datasets.train.batch_size_per_gpu=4"):
        assert options_fingerprint(load_options(TINY, [change])[0]) != base, change


def test_base_dir_resolves_relative_paths(tmp_path):
    opt, _ = load_options(TINY, ["path.pretrain_network_g=w.pth", "datasets.val.dataroot_gt=/abs/GT"],
                          base_dir=tmp_path)
    assert opt.datasets.train.dataroot_gt == str(tmp_path / "data/embedded/full/GT")
    assert opt.path.pretrain_network_g == str(tmp_path / "w.pth")
    assert opt.datasets.val.dataroot_gt == "/abs/GT"


def test_key_of_another_type_says_which_type_it_belongs_to():
    message = _error(load_options, TINY, ["train.scheduler.milestones=[1000]"])
    assert "train.scheduler.milestones is an option of train.scheduler.type MultiStepRestartLR" in message
    opt, _ = load_options(TINY, ["train.scheduler={type: MultiStepRestartLR, milestones: [1000, 2000]}"])
    assert opt.train.scheduler.to_dict() == {"type": "MultiStepRestartLR", "milestones": [1000, 2000], "gamma": 0.1,
                                         "restarts": [0], "restart_weights": [1.0]}


def test_malformed_target_section_is_reported_not_replaced(tmp_path):
    raw = _raw(CONFIGS / "train_EDVR_L_x4_SR_REDS.yml")
    raw["train"] = [1, 2]
    assert "missing option train.total_iter" not in _error(load_options, _write(tmp_path, raw))
    del raw["network_g"]["ema_decay"]
    message = _error(load_options, _write(tmp_path, raw))
    assert message.endswith("train = [1, 2] is not valid: expected a mapping of options (key: value lines). Fix: "
                            "change it in the file or with override 'train=VALUE'")
