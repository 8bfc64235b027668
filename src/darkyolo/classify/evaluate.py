"""Scoring a classifier: top-1, top-5, per-class accuracy and the confusion matrix, on centre
crops (Darknet's ``classifier valid``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from darkyolo.classify.data import ClassificationDataset, LabelledImage, collate_classification


@dataclass
class ClassifyResult:
    """``confusion[t, p]`` counts pictures of true class ``t`` predicted as ``p``; ``top5`` is
    top-``min(5, classes)``. ``unreadable``: pictures that could not be read (left out)."""

    names: list[str]
    top1: float
    top5: float
    confusion: np.ndarray
    images: int
    unreadable: list[str] = field(default_factory=list)

    @property
    def per_class(self) -> list[float]:
        """Recall of each class (NaN where it has no pictures)."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return list(np.diag(self.confusion) / totals)

    def table(self) -> str:
        """A printable summary: the two accuracies, then each class's recall and count."""
        k = min(5, len(self.names))
        lines = [f"{self.images} images: top-1 {self.top1:.4f}, top-{k} {self.top5:.4f}"]
        width = max(len(n) for n in self.names)
        for name, recall, count in zip(self.names, self.per_class, self.confusion.sum(axis=1)):
            lines.append(f"  {name:<{width}}  {recall:6.3f}  ({int(count)} images)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "top1": self.top1,
            "top5": self.top5,
            "names": self.names,
            "per_class": [None if np.isnan(v) else float(v) for v in self.per_class],
            "confusion": self.confusion.tolist(),
            "unreadable": self.unreadable,
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path


def class_probabilities(model: nn.Module, images: Tensor) -> Tensor:
    """``float [B, 3, S, S]`` in 0..1 -> ``[B, N]`` probabilities: a Darknet classifier's own
    ``[softmax]`` output in eval mode, the softmax of any other module's logits."""
    output = model(images)
    if getattr(model, "task", None) == "classify":
        return output.float()
    return output.float().softmax(dim=-1)


@torch.inference_mode()
def evaluate_classifier(
    model: nn.Module,
    items: list[LabelledImage],
    names: list[str],
    size: int,
    device: torch.device | str = "cpu",
    *,
    batch_size: int = 32,
    workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> ClassifyResult:
    """Centre-crop every picture to ``size``, classify, count (unreadable pictures left out and
    named in the result)."""
    device = torch.device(device)
    dataset = ClassificationDataset(items, size, None, skip_unreadable=True)
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_classification
    )
    was_training = model.training
    model.eval()
    classes = len(names)
    k = min(5, classes)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    top5 = 0
    unreadable: list[str] = []
    batches = loader
    if progress:
        from tqdm import tqdm

        batches = tqdm(loader, desc="classify val", unit="batch", leave=False)
    for images, labels, indices in batches:
        good = torch.tensor([i >= 0 for i in indices])
        unreadable += [str(items[-1 - i].image) for i in indices if i < 0]
        if not good.any():
            continue
        x = images[good].to(device).float().div_(255)
        with torch.autocast(
            device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
        ):
            probs = class_probabilities(model, x).float().cpu()
        truth = labels[good]
        best = probs.topk(k, dim=1).indices
        top5 += int((best == truth[:, None]).any(dim=1).sum())
        np.add.at(confusion, (truth.numpy(), best[:, 0].numpy()), 1)
    model.train(was_training)
    total = int(confusion.sum())
    top1 = float(np.trace(confusion) / total) if total else float("nan")
    return ClassifyResult(
        names, top1, top5 / total if total else float("nan"), confusion, total, unreadable
    )


def plot_confusion(result: ClassifyResult, path: str | Path) -> Path:
    """The confusion matrix, rows normalised to recall, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = result.confusion.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    n = len(result.names)
    side = max(4.0, 0.5 * n + 2)
    figure, axes = plt.subplots(figsize=(side, side))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(n), result.names, rotation=90)
    axes.set_yticks(range(n), result.names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if n <= 30:
        for t in range(n):
            for p in range(n):
                if counts[t, p]:
                    colour = "white" if shares[t, p] > 0.5 else "black"
                    axes.text(p, t, int(counts[t, p]), ha="center", va="center", color=colour, fontsize=8)  # fmt: skip
    axes.set_title(f"top-1 {result.top1:.3f} on {result.images} images")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
