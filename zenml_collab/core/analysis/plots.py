"""Matplotlib figures for the HTML reports, returned as PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never through
``pyplot``: pyplot keeps global state and picks a GUI backend, which a library must not do to
its caller (and which fails on a headless machine).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from zenml_collab.core.analysis.errors import AnalysisError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from zenml_collab.core.analysis.anomalies import DriftScore
    from zenml_collab.core.analysis.evaluation import Evaluation
    from zenml_collab.core.analysis.statistics import FeatureStatistics

__all__ = ["drift_png", "feature_png", "slice_metrics_png"]

# Colour-blind-safe palette (Okabe-Ito), one colour per split or metric.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_MAX_CATEGORIES_PLOTTED = 15


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise AnalysisError(
            "HTML reports need matplotlib, which is not installed",
            hint="pip install matplotlib",
        ) from exc
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" metadata: the same data then gives the same bytes on any matplotlib.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def feature_png(name: str, per_split: Sequence[tuple[str, FeatureStatistics]]) -> bytes | None:
    """Histogram (numeric) or value-frequency bars (categorical) of one feature, all splits.

    Heights are shares of each split's rows, not counts, so a 20% eval split and an 80% train
    split can be compared by eye. Returns None when the feature has nothing to plot.
    """
    import numpy as np

    figure = _figure(5.2, 2.8)
    axes = figure.add_subplot()
    width_share = 0.8 / max(1, len(per_split))
    first = per_split[0][1]
    if first.is_numeric:
        histograms = [(split, s.histogram) for split, s in per_split if s.histogram is not None]
        if not histograms:
            return None
        edges = np.asarray(histograms[0][1].edges)
        widths = np.diff(edges)
        for index, (split, histogram) in enumerate(histograms):
            counts = np.asarray(histogram.counts, dtype=float)
            share = counts / counts.sum() if counts.sum() else counts
            left = edges[:-1] + widths * (0.1 + index * width_share)
            axes.bar(
                left,
                share,
                width=widths * width_share,
                align="edge",
                color=PALETTE[index % len(PALETTE)],
                label=split,
            )
        axes.set_xlabel(name)
    else:
        labels = [v for v, _ in first.top_values[:_MAX_CATEGORIES_PLOTTED]]
        for _, stats in per_split[1:]:
            labels += [v for v, _ in stats.top_values[:_MAX_CATEGORIES_PLOTTED] if v not in labels]
        labels = labels[:_MAX_CATEGORIES_PLOTTED]
        if not labels:
            return None
        positions = np.arange(len(labels))
        for index, (split, stats) in enumerate(per_split):
            frequencies = dict(stats.top_values)
            total = max(1, stats.count)
            shares = [frequencies.get(label, 0) / total for label in labels]
            axes.bar(
                positions - 0.4 + index * width_share,
                shares,
                width=width_share,
                align="edge",
                color=PALETTE[index % len(PALETTE)],
                label=split,
            )
        axes.set_xticks(positions, labels, rotation=30 if len(labels) > 5 else 0, ha="right")
    axes.set_ylabel("share of rows")
    axes.set_title(name, loc="left", fontsize=11, fontweight="bold")
    axes.legend(frameon=False, fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def drift_png(scores: Sequence[DriftScore]) -> bytes | None:
    """Horizontal bars of each feature's drift distance, with its threshold marked."""
    if not scores:
        return None
    figure = _figure(7.5, 0.9 + 0.32 * len(scores))
    axes = figure.add_subplot()
    positions = list(range(len(scores)))
    colours = ["#D55E00" if s.drifted else "#0072B2" for s in scores]
    axes.barh(positions, [s.value for s in scores], color=colours)
    axes.scatter(
        [s.threshold for s in scores],
        positions,
        marker="|",
        s=200,
        color="black",
        label="threshold",
        zorder=3,
    )
    axes.set_yticks(
        positions, [f"{s.feature} ({s.metric.replace('_', '-')})" for s in scores], fontsize=9
    )
    axes.invert_yaxis()
    axes.set_xlim(0, max(1.0, *(s.value for s in scores)))
    axes.set_xlabel("distance between baseline and split (0 = identical, 1 = disjoint)")
    axes.set_title("Drift per feature", loc="left", fontsize=11, fontweight="bold")
    axes.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def slice_metrics_png(evaluation: Evaluation, column: str) -> bytes:
    """Grouped bars of every metric per value of ``column``; dashed lines mark overall values."""
    import numpy as np

    entries = evaluation.by_column(column)
    metrics = evaluation.metric_names
    figure = _figure(7.5, 3.2)
    axes = figure.add_subplot()
    positions = np.arange(len(entries))
    width = 0.8 / max(1, len(metrics))
    for index, metric in enumerate(metrics):
        colour = PALETTE[index % len(PALETTE)]
        # An undefined metric (one-class slice) is drawn as no bar rather than as zero.
        values = [e.metrics.get(metric) for e in entries]
        heights = [np.nan if v is None else v for v in values]
        axes.bar(
            positions - 0.4 + index * width,
            heights,
            width=width,
            align="edge",
            color=colour,
            label=metric,
        )
        overall = evaluation.overall.metrics.get(metric)
        if overall is not None:
            axes.axhline(overall, color=colour, linestyle="--", linewidth=1, alpha=0.7)
    axes.set_xticks(positions, [f"{e.value}\n(n={e.count})" for e in entries], fontsize=9)
    axes.set_title(
        f"Metrics by {column} (dashed: overall)", loc="left", fontsize=11, fontweight="bold"
    )
    tallest = max((v for e in entries for v in e.metrics.values() if v is not None), default=1.0)
    axes.set_ylim(0, max(1.0, tallest) * 1.05)
    axes.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)
