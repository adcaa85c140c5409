"""Stage 1 of the aligning recipe: PCD trained on the offset-fidelity loss alone (edvr_lib.train.align_pretrain).

    python -m tools.align_pretrain --config configs/train_EDVR_aligning_embedded.yml \\
        --init checkpoints/edvr_tiny_embedded.pth --output experiments/align_stage1/net_g_stage1.pth

Renders a bank of motion windows from the config's ``datasets.train`` (a MotionWindowDataset; ``--bank-gt-size``
replaces its ``gt_size``), loads ``--init`` (or builds the config's network from scratch), trains
``pcd_align`` only, and writes the weights (BasicSR format) with a JSONL log beside them; a snapshot every
``--save-every`` steps. Stage 2 is ``edvr train`` with ``path.pretrain_network_g`` set to the output.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from edvr_lib.models import load_pretrained, save_pretrained
from edvr_lib.train.align_pretrain import pretrain_alignment, render_bank
from edvr_lib.train.data import build_train_dataset
from edvr_lib.train.options import load_options
from edvr_lib.train.state import build_model
from edvr_lib.utils import EDVRError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, type=Path, help="a training config whose datasets.train is a "
                   "MotionWindowDataset")
    p.add_argument("--init", type=Path, default=None, help="weights to start from (default: the config's network, "
                   "randomly initialised)")
    p.add_argument("--output", required=True, type=Path, help="the stage-1 weights (.pth)")
    p.add_argument("--iters", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threshold", type=float, default=0.5, help="free radius of the offset loss, px")
    p.add_argument("--crop", type=int, default=32, help="LR side of the random training crops")
    p.add_argument("--bank", type=int, default=1200, help="windows rendered once, then flipped and cropped")
    p.add_argument("--bank-gt-size", type=int, default=192)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    opt, _ = load_options(args.config, [f"datasets.train.gt_size={args.bank_gt_size}"])
    if opt.datasets.train.type != "MotionWindowDataset":
        raise EDVRError(f"{args.config}: datasets.train.type must be MotionWindowDataset (windows with known flow)")
    torch.manual_seed(args.seed)
    model = load_pretrained(args.init) if args.init else build_model(opt)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    bank_file = args.output.with_suffix(f".bank{args.bank}_{args.bank_gt_size}_{args.seed}.pt")
    if bank_file.is_file():
        bank = torch.load(bank_file)
    else:
        t0 = time.time()
        bank = render_bank(build_train_dataset(opt), args.bank, seed=args.seed)
        torch.save(bank, bank_file)
        print(f"rendered {args.bank} windows in {time.time() - t0:.0f} s -> {bank_file}", flush=True)
    log_file, t0 = args.output.with_suffix(".log.jsonl"), time.time()
    log_file.unlink(missing_ok=True)

    def log(entry):
        entry["seconds"] = round(time.time() - t0, 1)
        with open(log_file, "a") as f:  # one line appended per entry, not the whole log rewritten
            f.write(json.dumps(entry) + "\n")
        print(entry, flush=True)
        if entry["iter"] % args.save_every == 0:
            save_pretrained(model, args.output.with_name(f"{args.output.stem}_{entry['iter']}.pth"))

    pretrain_alignment(model, bank, args.iters, args.batch_size, args.lr, args.threshold, crop=args.crop,
                       seed=args.seed, log=log, log_every=50)
    save_pretrained(model, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
