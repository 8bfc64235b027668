"""The multi-scale batch sampler: sizes, blocks, determinism, and agreement across ranks."""

from __future__ import annotations

import pytest
from torch.utils.data import DistributedSampler

from darkyolo.data.multiscale import MultiScaleBatchSampler, multiscale_sizes


def test_sizes_scale_with_the_base():
    assert multiscale_sizes(416) == list(range(320, 609, 32))
    assert multiscale_sizes(64) == [64, 96]
    assert multiscale_sizes(128) == [96, 128, 160, 192]
    assert multiscale_sizes(608)[0] == 480 and multiscale_sizes(608)[-1] == 896
    assert all(s % 32 == 0 for s in multiscale_sizes(320))
    with pytest.raises(ValueError):
        multiscale_sizes(0)


def _sampler(n: int, replicas: int = 1, rank: int = 0, seed: int = 0) -> DistributedSampler:
    return DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=True, seed=seed)


def test_the_size_changes_only_between_blocks():
    sampler = MultiScaleBatchSampler(_sampler(400), 4, multiscale_sizes(416), interval=10, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 100
    sides = [batch[0][1] for batch in batches]
    for block in range(10):
        assert len(set(sides[block * 10 : block * 10 + 10])) == 1
    assert len(set(sides)) > 2
    assert all(len({key[1] for key in batch}) == 1 for batch in batches)
    assert sorted(key[0] for batch in batches for key in batch) == list(range(400))


def test_draws_depend_on_seed_and_epoch_only():
    def sides(seed: int, epoch: int) -> list[int]:
        sampler = MultiScaleBatchSampler(_sampler(200), 2, multiscale_sizes(416), interval=5, seed=seed)  # fmt: skip
        sampler.set_epoch(epoch)
        return [batch[0][1] for batch in sampler]

    assert sides(1, 0) == sides(1, 0)
    assert sides(1, 0) != sides(1, 1)
    assert sides(1, 0) != sides(2, 0)


def test_every_rank_draws_the_same_sizes():
    per_rank = []
    for rank in range(2):
        sampler = MultiScaleBatchSampler(_sampler(64, 2, rank), 4, multiscale_sizes(416), interval=2)  # fmt: skip
        sampler.set_epoch(5)
        per_rank.append(list(sampler))
    assert [b[0][1] for b in per_rank[0]] == [b[0][1] for b in per_rank[1]]
    indices = [{k[0] for b in batches for k in b} for batches in per_rank]
    assert not indices[0] & indices[1] and len(indices[0] | indices[1]) == 64
    assert all(k[2] == 5 for b in per_rank[0] for k in b)  # the epoch travels with the key


def test_single_size_and_short_last_batch():
    sampler = MultiScaleBatchSampler(_sampler(10), 4, None, base_size=96)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
    assert {k[1] for b in batches for k in b} == {96}
    dropping = MultiScaleBatchSampler(_sampler(10), 4, [64], drop_last=True)
    assert [len(b) for b in dropping] == [4, 4] and len(dropping) == 2
