"""Plots: PR curves, training curves, anchor elbow curves, class counts (matplotlib, Agg)."""

from __future__ import annotations

from darkyolo.viz.plots import (
    plot_class_counts,
    plot_elbow,
    plot_pr_curves,
    plot_training_curves,
)

__all__ = ["plot_class_counts", "plot_elbow", "plot_pr_curves", "plot_training_curves"]
