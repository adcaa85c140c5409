"""A tiny `edvr train` run for the training tests: configs/train_EDVR_tiny_embedded.yml shrunk to num_feat 8,
3 frames and a few iterations on the smoke embedded set, or on explicit random batches."""
from pathlib import Path

import torch

from edvr_lib.data import embedded_paths
from edvr_lib.train.options import load_options

CONFIG = Path(__file__).parents[2] / "configs" / "train_EDVR_tiny_embedded.yml"
TINY = ["network_g.num_feat=8", "network_g.num_frame=3", "network_g.deformable_groups=2",
        "network_g.num_extract_block=1", "network_g.num_reconstruct_block=1", "num_gpu=0",
        "datasets.train.num_frame=3", "datasets.train.gt_size=32", "datasets.train.batch_size_per_gpu=2",
        "datasets.train.num_worker_per_gpu=0", "datasets.train.dataset_enlarge_ratio=1",
        "train.total_iter=6", "train.scheduler.periods=[3,4]", "train.scheduler.restart_weights=[1,0.5]",
        "logger.print_freq=1", "logger.save_checkpoint_freq=3"]


def tiny_options(data_root, *sets, val=False) -> list[str]:
    """``--set`` items for a tiny run of configs/train_EDVR_tiny_embedded.yml on the smoke embedded set."""
    p = embedded_paths(data_root)
    items = [f"datasets.train.dataroot_gt={p['gt']}", f"datasets.train.dataroot_lq={p['lq']}",
             f"datasets.train.meta_info_file={p['meta_train']}"] + TINY
    if val:
        items += [f"datasets.val.dataroot_gt={p['gt']}", f"datasets.val.dataroot_lq={p['lq']}",
                  f"datasets.val.meta_info_file={p['meta_test']}", "datasets.val.num_frame=3", "val.val_freq=3"]
    else:
        items += ["val=~", "datasets.val=~"]
    return items + list(sets)


def options(data_root, *sets, val=False) -> dict:
    return load_options(CONFIG, tiny_options(data_root, *sets, val=val))[0]


def random_batches(n, seed=0, b=2, t=3, size=8):
    g = torch.Generator().manual_seed(seed)
    return [{"lq": torch.rand(b, t, 3, size, size, generator=g),
             "gt": torch.rand(b, 3, 4 * size, 4 * size, generator=g)} for _ in range(n)]


def quiet(messages=None):
    return (lambda m: None) if messages is None else messages.append


def states(run):
    return {int(p.stem): torch.load(p, weights_only=True) for p in (Path(run) / "training_states").glob("[0-9]*.state")}


def leftovers(run):
    return [p for p in Path(run).rglob(".*") if p.is_file()]
