"""Data-loader throughput on the embedded set: samples/s with 0, 2 and 4 workers.

Run ``python -m benchmarks.loader_throughput`` (``EDVR_SMOKE=1`` for the tiny set). Each sample
is what one GPU training step consumes per batch element in the EDVR recipe: 5 LQ frames with a
64x64 crop and a 256x256 GT crop (decode PNGs, crop, flip/rotate, to tensors). Compare the
figure with the training loop's samples/s (batch size x iterations/s): if the loader is faster,
decoding is not the bottleneck; otherwise add workers (BasicSR uses 3 per GPU) or use LMDB.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import torch
from torch.utils.data import DataLoader, RandomSampler

from edvr_lib.data import REDSDataset, embedded_paths, prepare_embedded
from edvr_lib.utils import atomic_write_text, smoke_mode


def measure(dataset, num_workers: int, num_samples: int, batch_size: int) -> float:
    """Samples per second over ``num_samples`` random samples (after one warm-up batch)."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=num_samples + batch_size,
                            generator=torch.Generator().manual_seed(0))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        persistent_workers=False)
    it = iter(loader)
    next(it)  # warm-up: worker start-up is not throughput
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += batch["lq"].shape[0]
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--samples", type=int, default=None, help="samples per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--gt-size", type=int, default=None, help="GT crop (default 256; smoke 64)")
    parser.add_argument("--num-frame", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    smoke = smoke_mode()
    samples = args.samples or (32 if smoke else 256)
    gt_size = args.gt_size or (64 if smoke else 256)
    random.seed(0)
    paths = embedded_paths(prepare_embedded(progress=False))
    ds = REDSDataset(paths["gt"], paths["lq"], paths["meta_train"], val_partition=None, num_frame=args.num_frame,
                     gt_size=gt_size)
    results = {"variant": "smoke" if smoke else "full", "gt_size": gt_size, "num_frame": args.num_frame,
               "batch_size": args.batch_size, "samples": samples, "samples_per_s": {}}
    print(f"REDSDataset on the embedded set ({results['variant']}): {len(ds)} keys, "
          f"LQ {args.num_frame}x{gt_size // 4}x{gt_size // 4}, GT {gt_size}x{gt_size}, batch {args.batch_size}")
    for w in args.workers:
        rate = measure(ds, w, samples, args.batch_size)
        results["samples_per_s"][w] = round(rate, 1)
        print(f"  num_workers={w}: {rate:7.1f} samples/s")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
