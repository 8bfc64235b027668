"""Checkpoints: atomic writes, safe loading, RNG states."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from darkyolo.errors import WeightsError
from darkyolo.models.io import read_checkpoint
from darkyolo.training.checkpoint import (
    atomic_save,
    make_checkpoint,
    rng_state,
    set_rng_state,
)


def test_round_trip_with_weights_only(tmp_path):
    data = make_checkpoint(model={"w": torch.arange(6.0).view(2, 3)}, epoch=3, names=["a"], rng=rng_state())  # fmt: skip
    path = atomic_save(data, tmp_path / "sub" / "last.pt")
    loaded = read_checkpoint(path)  # torch.load(weights_only=True) inside
    assert loaded["epoch"] == 3 and loaded["names"] == ["a"]
    assert torch.equal(loaded["model"]["w"], data["model"]["w"])
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_rng_states_restore_all_three_generators():
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9)
    np.random.seed(9)
    random.seed(9)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_rng_state_survives_a_saved_checkpoint(tmp_path):
    random.seed(5)
    np.random.seed(5)
    path = atomic_save(make_checkpoint(rng=rng_state()), tmp_path / "c.pt")
    expected = (np.random.rand(2), random.random())
    set_rng_state(read_checkpoint(path)["rng"])
    assert np.array_equal(np.random.rand(2), expected[0]) and random.random() == expected[1]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = atomic_save(make_checkpoint(epoch=1), tmp_path / "last.pt")
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for a lambda
        atomic_save(make_checkpoint(epoch=2, bad=lambda: None), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "darkyolo-checkpoint", "version": 1, "x": Evil()}, path)
    with pytest.raises(WeightsError, match="refused: the file asks to unpickle more than tensors"):
        read_checkpoint(path)


def test_other_files_are_refused(tmp_path):
    other = tmp_path / "plain.pt"
    torch.save({"model": {}}, other)
    with pytest.raises(WeightsError, match="not a darkyolo training checkpoint"):
        read_checkpoint(other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "darkyolo-checkpoint", "version": 99}, newer)
    with pytest.raises(WeightsError, match="newer"):
        read_checkpoint(newer)
    with pytest.raises(WeightsError, match="no such"):
        read_checkpoint(tmp_path / "missing.pt")
