"""What a run writes as it goes: ``results.csv`` (a row an epoch), ``steps.csv`` (a row every
``log_interval`` updates), the epoch's line, the progress bar, and ``results.png`` at the end."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

#: ``results.csv`` columns the curves leave out (counters and speeds, not training signals)
_NOT_PLOTTED = ("updates", "seen", "time_s", "img_s", "map75", "fitness")


class CsvLog:
    """Append rows to a CSV; the header comes from the first row's keys (or the file's own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file():
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), None)
            self.columns = header or None

    def write(self, row: dict[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(self.columns)
            writer.writerow([_cell(row.get(c)) for c in self.columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def epoch_line(epoch: int, epochs: int, stats: dict[str, float], metrics: str) -> str:
    """``epoch 3/30: loss 12.8 (box 5.81 obj 3.87 cls 3.13) lr 0.00113, 14.0 img/s, 15 s;`` and
    the validation text."""
    parts = " ".join(
        f"{k} {v:.3g}" for k, v in stats.items() if k not in ("updates", "seen", "time_s", "img_s", "lr", "loss")
    )  # fmt: skip
    line = (
        f"epoch {epoch}/{epochs}: loss {stats['loss']:.4g} ({parts}) lr {stats['lr']:.3g}, "
        f"{stats['img_s']:.1f} img/s, {stats['time_s']:.0f} s"
    )
    return f"{line}; {metrics}" if metrics else line


class EpochMeter:
    """An epoch's running numbers: the summed loss and its parts over the updates kept (a skipped
    update's micro-batches count as pictures, not as loss), pictures and time."""

    def __init__(self, part_names: Sequence[str], device: torch.device, world_size: int) -> None:
        self.parts: dict[str, Tensor | float] = {name: 0.0 for name in part_names}
        self.loss = torch.zeros((), device=device)
        self.images = 0
        self.world_size = world_size
        self.start = time.perf_counter()

    def add(self, totals: Iterable[tuple[Tensor, dict[str, Tensor]]]) -> None:
        """An update's micro-batches: (summed loss, parts) each."""
        for total, parts in totals:
            self.loss += total
            for name, value in parts.items():
                self.parts[name] = self.parts.get(name, 0) + value

    def per_image(self, value: Tensor | float) -> float:
        return float(value) / max(self.images, 1)

    def rate(self) -> float:
        """Pictures a second, all processes together."""
        return self.images * self.world_size / max(time.perf_counter() - self.start, 1e-9)

    def shown(self, lr: float, side: int) -> dict[str, Any]:
        """The progress bar's tail."""
        shown = {"loss": f"{self.per_image(self.loss):.3g}"}
        shown.update({name: f"{self.per_image(v):.3g}" for name, v in self.parts.items()})
        return {**shown, "lr": f"{lr:.2e}", "size": side, "img_s": f"{self.rate():.1f}"}

    def stats(self, updates: int, seen: int, lr: float) -> dict[str, float]:
        """The epoch's ``results.csv`` numbers: losses per picture, speed, the last lr."""
        elapsed = time.perf_counter() - self.start
        return {
            "updates": updates, "seen": seen, "time_s": round(elapsed, 2), "img_s": self.rate(),
            "lr": lr, "loss": self.per_image(self.loss),
            **{name: self.per_image(value) for name, value in self.parts.items()},
        }  # fmt: skip


class Progress:
    """The epoch's progress bar (tqdm), or nothing when ``enabled`` is false."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=description, unit="batch", dynamic_ncols=True, leave=True)  # fmt: skip

    def step(self, shown: dict[str, Any] | None = None) -> None:
        """One micro-batch done; ``shown``: new numbers for the bar's tail."""
        if self.bar is None:
            return
        self.bar.update(1)
        if shown is not None:
            self.bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def plot_results(run_dir: Path) -> None:
    """``results.png``: the training curves of ``results.csv`` (losses, learning rate, scores)."""
    from darkyolo.viz.plots import plot_training_curves

    csv_path = run_dir / "results.csv"
    if not csv_path.is_file():
        return
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    shown = [c for c in rows[0] if c not in _NOT_PLOTTED] if rows else []
    plot_csv = run_dir / ".plot.csv"
    with open(plot_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, shown, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    plot_training_curves(plot_csv, run_dir / "results.png")
    plot_csv.unlink()
