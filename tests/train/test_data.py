"""The training data stream: BasicSR's sample order, and batches that depend only on their position."""
import math

import pytest
import torch

from edvr_lib.train.data import SampleOrder, build_train_dataset, train_stream
from tests.train.tiny_run import options

pytestmark = pytest.mark.usefixtures("one_thread")


def basicsr_batches(dataset_len, batch_size, enlarge, rank, world_size, epoch):
    """BasicSR's EnlargedSampler (basicsr/data/data_sampler.py) + DataLoader(drop_last=True), written out."""
    num_samples = math.ceil(dataset_len * enlarge / world_size)
    total_size = num_samples * world_size
    g = torch.Generator()
    g.manual_seed(epoch)
    indices = torch.randperm(total_size, generator=g).tolist()
    indices = [v % dataset_len for v in indices][rank:total_size:world_size]
    return [indices[j:j + batch_size] for j in range(0, len(indices) - batch_size + 1, batch_size)]


@pytest.mark.parametrize("dataset_len, batch_size, enlarge, world_size", [(40, 2, 1, 1), (7, 3, 5, 2), (10, 4, 2, 3)])
def test_sample_order_is_basicsr_enlarged_sampler(dataset_len, batch_size, enlarge, world_size):
    for rank in range(world_size):
        order = SampleOrder(dataset_len, batch_size, enlarge, rank, world_size)
        expected = [b for epoch in range(3) for b in basicsr_batches(dataset_len, batch_size, enlarge, rank,
                                                                      world_size, epoch)]
        got = [order.batch(b) for b in range(len(expected))]
        assert [[i for i, _ in items] for _, items in got] == expected
        assert [epoch for epoch, _ in got] == [b // order.batches_per_epoch for b in range(len(expected))]


def test_batches_depend_only_on_their_position(embedded_smoke_root):
    opt = options(embedded_smoke_root, "datasets.train.dataset_enlarge_ratio=1")
    dataset = build_train_dataset(opt)
    from_start = list(train_stream(opt, dataset, 0, 25))  # crosses an epoch (20 batches of 2)
    opt.datasets.train.num_worker_per_gpu = 2
    resumed = list(train_stream(opt, dataset, 18, 25))  # other start, two workers
    for a, b in zip(from_start[18:], resumed):
        assert a["key"] == b["key"] and torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    # random crops and flips differ between samples and between epochs
    assert not torch.equal(from_start[0]["gt"][0], from_start[0]["gt"][1])
    assert from_start[0]["lq"].shape == (2, 3, 3, 8, 8) and from_start[0]["gt"].shape == (2, 3, 32, 32)
