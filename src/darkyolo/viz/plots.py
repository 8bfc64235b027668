"""Result plots written to PNG files (matplotlib, rendered by Agg; never opens a window).

Figures are built as bare ``matplotlib.figure.Figure`` objects, not through pyplot, so nothing is
registered in pyplot's global state, no display is needed, and the caller's backend is left alone.
Every function takes an output path, creates its parent folder, writes one figure and returns the
path it wrote.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from darkyolo.errors import DataError

__all__ = ["plot_class_counts", "plot_elbow", "plot_pr_curves", "plot_training_curves"]


def _new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot's global state (safe in threads, nothing to leak)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="tight")
    FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot uses
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    fig.clear()
    return out


def plot_elbow(
    ks: Sequence[int],
    mean_ious: Sequence[float],
    path: str | Path,
    chosen_k: int | None = None,
) -> Path:
    """Mean IoU to the closest anchor against the number of k-means clusters.

    Args:
        ks: cluster counts, e.g. ``[1, 2, ..., 12]``.
        mean_ious: mean best IoU (0..1) of the label boxes for each k, same length as ``ks``.
        path: PNG to write.
        chosen_k: if given, that k is marked on the curve.
    """
    if len(ks) != len(mean_ious):
        raise ValueError(f"plot_elbow: {len(ks)} ks but {len(mean_ious)} mean IoUs")
    if len(ks) == 0:
        raise ValueError("plot_elbow: nothing to plot (no ks)")
    fig = _new_figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(list(ks), [100.0 * v for v in mean_ious], marker="o")
    if chosen_k is not None and chosen_k in list(ks):
        i = list(ks).index(chosen_k)
        ax.plot([chosen_k], [100.0 * mean_ious[i]], marker="*", markersize=14, color="tab:red")
        ax.annotate(
            f"k={chosen_k}: {100.0 * mean_ious[i]:.1f}",
            (chosen_k, 100.0 * mean_ious[i]),
            textcoords="offset points",
            xytext=(8, -14),
        )
    ax.set_xlabel("number of anchors k")
    ax.set_ylabel("mean IoU to closest anchor (%)")
    ax.set_title("k-means anchors: elbow curve")
    ax.set_xticks(list(ks))
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def _curves_from(result_or_curves: Any) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Accept a result with ``.pr_curves`` or a mapping class -> (recall, precision)."""
    curves = getattr(result_or_curves, "pr_curves", result_or_curves)
    if not isinstance(curves, Mapping):
        raise TypeError(
            "plot_pr_curves: expected an evaluation result with .pr_curves or a mapping "
            "class index -> (recall, precision)"
        )
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k, v in curves.items():
        recall, precision = v
        out[int(k)] = (np.asarray(recall, dtype=float), np.asarray(precision, dtype=float))
    return out


def plot_pr_curves(
    result_or_curves: Any,
    class_names: Sequence[str],
    path: str | Path,
    max_legend: int = 20,
) -> Path:
    """Precision-recall curves, one per class, plus their mean over classes.

    Args:
        result_or_curves: a ``darkyolo.evaluation.evaluator.EvalResult`` (uses ``.pr_curves``) or a
            mapping ``class_index -> (recall[R], precision[R])``. Classes without ground truth are
            absent from the mapping (or have empty arrays) and are skipped.
        class_names: names indexed by class.
        path: PNG to write.
        max_legend: above this many classes, per-class lines are thin grey with no legend.
    """
    curves = {k: v for k, v in _curves_from(result_or_curves).items() if v[0].size > 0}
    fig = _new_figure(7, 5.5)
    ax = fig.add_subplot()
    many = len(curves) > max_legend
    for k in sorted(curves):
        recall, precision = curves[k]
        name = class_names[k] if 0 <= k < len(class_names) else str(k)
        ap = float(np.mean(precision)) if precision.size else float("nan")
        if many:
            ax.plot(recall, precision, color="grey", linewidth=0.5, alpha=0.6)
        else:
            ax.plot(recall, precision, linewidth=1.2, label=f"{name} {ap:.3f}")
    if curves:
        lengths = {v[0].size for v in curves.values()}
        if len(lengths) == 1:  # shared recall grid: draw the mean curve
            recall = next(iter(curves.values()))[0]
            mean_p = np.mean(np.stack([v[1] for v in curves.values()]), axis=0)
            ax.plot(
                recall,
                mean_p,
                color="tab:blue",
                linewidth=3,
                label=f"all classes {float(np.mean(mean_p)):.3f} AP@.5",
            )
    else:
        ax.text(0.5, 0.5, "no classes with ground truth", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall at IoU 0.5")
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(loc="lower left", fontsize="small")
    return _save(fig, path)


def _read_numeric_csv(csv_path: str | Path) -> tuple[str, list[float], dict[str, list[float]]]:
    """Read a log CSV: returns (x column name, x values, {column: values}) for numeric columns.

    Empty cells become NaN. A column with any non-numeric, non-empty cell is left out.
    """
    p = Path(csv_path)
    if not p.is_file():
        raise DataError("training log not found", file=str(p))
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataError("training log is empty (no header row)", file=str(p))
        fields = [name.strip() for name in reader.fieldnames]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    xname = next((c for c in ("epoch", "step", "iteration", "batch") if c in fields), None)
    if xname is None:
        raise DataError(
            f"training log needs an 'epoch' or 'step' column, found {fields}", file=str(p), line=1
        )
    columns: dict[str, list[float]] = {}
    for name in fields:
        values: list[float] = []
        for row in rows:
            cell = row.get(name, "")
            if cell == "":
                values.append(math.nan)
                continue
            try:
                values.append(float(cell))
            except ValueError:
                values = []
                break
        if values:
            columns[name] = values
    if xname not in columns:
        raise DataError(f"column '{xname}' is not numeric", file=str(p))
    x = columns.pop(xname)
    return xname, x, columns


def plot_training_curves(csv_path: str | Path, path: str | Path) -> Path:
    """One subplot per numeric column of a training log CSV, against its epoch/step column.

    Args:
        csv_path: CSV with a header row holding ``epoch`` or ``step`` and numeric columns such as
            ``loss_box, loss_obj, loss_cls, lr, map50, map``; blank cells are gaps.
        path: PNG to write.
    """
    xname, x, columns = _read_numeric_csv(csv_path)
    n = max(len(columns), 1)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = _new_figure(3.2 * ncols, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    xs = np.asarray(x, dtype=float)
    for ax, (name, values) in zip(axes, columns.items()):
        ys = np.asarray(values, dtype=float)
        ok = np.isfinite(ys) & np.isfinite(xs)
        ax.plot(xs[ok], ys[ok], marker="." if ok.sum() < 50 else None, linewidth=1.2)
        if name.lower().startswith("lr") and ok.any() and (ys[ok] > 0).all():
            ax.set_yscale("log")  # learning rates span decades
        ax.set_title(name)
        ax.set_xlabel(xname)
        ax.grid(True, alpha=0.3)
    if not columns:
        axes[0].text(0.5, 0.5, "no numeric columns", ha="center", va="center")
    for ax in axes[len(columns) :]:
        if columns:
            ax.set_visible(False)
    return _save(fig, path)


def plot_class_counts(
    counts: Sequence[int] | Mapping[int, int],
    class_names: Sequence[str],
    path: str | Path,
) -> Path:
    """Bar chart of instances per class.

    Args:
        counts: a count per class index (sequence) or a mapping class index -> count.
        class_names: names indexed by class.
        path: PNG to write.
    """
    if isinstance(counts, Mapping):
        values = [int(counts.get(i, 0)) for i in range(len(class_names))]
    else:
        values = [int(c) for c in counts]
    names = [class_names[i] if i < len(class_names) else str(i) for i in range(len(values))]
    fig = _new_figure(max(6.0, 0.3 * len(values) + 2), 4)
    ax = fig.add_subplot()
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(names, rotation=90, fontsize="small")
    ax.set_ylabel("instances")
    ax.set_title(f"instances per class ({sum(values)} in all)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
