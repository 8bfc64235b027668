"""Multi-scale training: a batch sampler that draws a new square input side every N batches.

YOLOv2's recipe (Darknet ``random=1``): every 10 batches the side is drawn from
``{320, 352, ..., 608}`` for a 416 network, i.e. multiples of the stride 32 from about 0.77x to
1.46x of the base side. :func:`multiscale_sizes` scales that range with the base side.

The draw depends only on ``(seed, epoch, batch index // interval)``: every rank of a distributed
run (each iterating its own :class:`~torch.utils.data.distributed.DistributedSampler` share) gets
the same side at the same step, and a resumed run the same sides as an uninterrupted one.
Batches are lists of keys ``(index, side, epoch)`` for
:class:`~darkyolo.data.dataset.DetectionDataset`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from darkyolo.errors import OptionError

#: Darknet's range for a 416 network: 320/416 and 608/416
LOW, HIGH = 320 / 416, 608 / 416


def multiscale_sizes(
    base: int, low: float = LOW, high: float = HIGH, stride: int = 32
) -> list[int]:
    """Multiples of ``stride`` from about ``low * base`` to ``high * base`` (rounded to the nearest
    multiple, at least one stride). ``multiscale_sizes(416)`` -> ``[320, 352, ..., 608]``."""
    if base < 1 or stride < 1:
        raise OptionError(f"base and stride must be positive, got {base}, {stride}")
    first = max(1, round(base * low / stride))
    last = max(first, round(base * high / stride))
    return [k * stride for k in range(first, last + 1)]


class MultiScaleBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Group an index sampler's output into batches of keys ``(index, side, epoch)``.

    Args:
        sampler: yields dataset indices (a ``DistributedSampler`` in a distributed run, which
            also serves single-process runs with ``num_replicas=1``).
        batch_size: indices per batch (this process's share).
        sizes: the sides to draw from; ``None`` or one side disables multi-scale.
        base_size: the side when ``sizes`` is ``None``.
        interval: batches between draws (Darknet: 10 updates).
        seed: base of the draws.
        drop_last: drop a last, short batch.
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        sizes: Sequence[int] | None = None,
        base_size: int = 416,
        interval: int = 10,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1 or interval < 1:
            raise ValueError(f"batch_size and interval must be positive ({batch_size}, {interval})")
        self.sampler = sampler
        self.batch_size = batch_size
        self.sizes = list(sizes) if sizes else [base_size]
        self.interval = interval
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s draws (and pass it on to the index sampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def size_for(self, batch_index: int) -> int:
        """The side of batch ``batch_index`` of the current epoch."""
        if len(self.sizes) == 1:
            return self.sizes[0]
        block = batch_index // self.interval
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, block])
        return int(self.sizes[int(rng.integers(len(self.sizes)))])

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        batch: list[int] = []
        number = 0
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                side = self.size_for(number)
                yield [(i, side, self.epoch) for i in batch]
                batch, number = [], number + 1
        if batch and not self.drop_last:
            side = self.size_for(number)
            yield [(i, side, self.epoch) for i in batch]

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
