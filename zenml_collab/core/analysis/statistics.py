"""Descriptive statistics per split and feature, with histograms comparable across splits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zenml_collab.core.analysis._columns import (
    NUMERIC_TYPES,
    FeatureType,
    ReadColumn,
    clean_float,
    infer_type,
    read_column,
    to_float_tuple,
)
from zenml_collab.core.analysis.errors import AnalysisError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from zenml_collab.core.analysis.schema import Schema

__all__ = [
    "DEFAULT_BINS",
    "QUANTILES",
    "TOP_K",
    "FeatureStatistics",
    "Histogram",
    "SplitStatistics",
    "Statistics",
    "compute_statistics",
    "feature_statistics",
    "top_values",
]

QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""Quantiles reported for numeric features: p1, p5, p25, median, p75, p95, p99."""

DEFAULT_BINS = 10
"""Equal-width histogram bins per numeric feature. Ten keeps the drift distance stable on a few
hundred rows (more bins means more sampling noise per bin) and still shows the shape."""

TOP_K = 50
"""Most frequent values kept per categorical feature (all of them for a categorical domain)."""


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``len(edges) - 1`` bins; the last bin includes its right edge."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(to_float_tuple(data["edges"]), tuple(int(c) for c in data["counts"]))


@dataclass(frozen=True)
class FeatureStatistics:
    """Statistics of one feature in one split.

    ``count`` is the number of readable values, ``missing`` of nulls, ``invalid`` of non-null
    values that cannot be read as the feature's type (text in a numeric column). Numeric features
    have mean, std (sample, ddof=1), min, max, ``quantiles`` as ``(q, value)`` pairs and a
    ``histogram`` whose edges are shared by every split. Categorical, string and bool features
    have ``top_values`` as ``(value, count)`` pairs, most frequent first (at most ``TOP_K``).
    """

    name: str
    type: FeatureType
    count: int
    missing: int
    invalid: int
    unique: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantiles: tuple[tuple[float, float], ...] = ()
    top_values: tuple[tuple[str, int], ...] = ()
    histogram: Histogram | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.invalid

    def quantile(self, q: float) -> float | None:
        """Return the value of quantile ``q`` (one of ``QUANTILES``), or None."""
        return next((value for level, value in self.quantiles if abs(level - q) < 1e-9), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "unique": self.unique,
            "mean": clean_float(self.mean),
            "std": clean_float(self.std),
            "min": clean_float(self.min),
            "max": clean_float(self.max),
            "quantiles": [[q, v] for q, v in self.quantiles],
            "top_values": [[v, c] for v, c in self.top_values],
            "histogram": self.histogram.to_dict() if self.histogram else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureStatistics:
        histogram = data.get("histogram")
        return cls(
            name=str(data["name"]),
            type=data["type"],
            count=int(data["count"]),
            missing=int(data["missing"]),
            invalid=int(data["invalid"]),
            unique=int(data["unique"]),
            mean=data.get("mean"),
            std=data.get("std"),
            min=data.get("min"),
            max=data.get("max"),
            quantiles=tuple((float(q), float(v)) for q, v in data.get("quantiles", ())),
            top_values=tuple((str(v), int(c)) for v, c in data.get("top_values", ())),
            histogram=Histogram.from_dict(histogram) if histogram else None,
        )


@dataclass(frozen=True)
class SplitStatistics:
    """Statistics of every feature of one split (``train``, ``eval``, ...)."""

    name: str
    num_rows: int
    features: tuple[FeatureStatistics, ...]

    def __getitem__(self, feature: str) -> FeatureStatistics:
        for stats in self.features:
            if stats.name == feature:
                return stats
        raise AnalysisError(
            f"split {self.name!r} has no feature {feature!r}",
            hint=f"features: {', '.join(f.name for f in self.features)}",
        )

    def __contains__(self, feature: object) -> bool:
        return any(f.name == feature for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_rows": self.num_rows,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitStatistics:
        return cls(
            name=str(data["name"]),
            num_rows=int(data["num_rows"]),
            features=tuple(FeatureStatistics.from_dict(f) for f in data["features"]),
        )


@dataclass(frozen=True)
class Statistics:
    """Statistics of several splits of one data set; ``stats["eval"]["age"].mean``."""

    splits: tuple[SplitStatistics, ...]

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.splits)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every feature of any split, in order of first appearance."""
        names: dict[str, None] = {}
        for split in self.splits:
            names.update((f.name, None) for f in split.features)
        return tuple(names)

    def __getitem__(self, split: str) -> SplitStatistics:
        for stats in self.splits:
            if stats.name == split:
                return stats
        raise AnalysisError(
            f"no statistics for split {split!r}",
            hint=f"splits: {', '.join(self.split_names) or '(none)'}",
        )

    def __iter__(self) -> Iterator[SplitStatistics]:
        return iter(self.splits)

    def to_dict(self) -> dict[str, Any]:
        return {"splits": [s.to_dict() for s in self.splits]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Statistics:
        return cls(tuple(SplitStatistics.from_dict(s) for s in data["splits"]))


def _shared_edges(columns: list[np.ndarray], feature_type: str, bins: int) -> np.ndarray | None:
    """Edges covering every split's values, so histograms of one feature line up across splits.

    Integer features with fewer distinct values than ``bins`` get one bin per integer, which
    avoids equal-width bins that alternate between full and empty.
    """
    import numpy as np

    present = [c for c in columns if len(c)]
    if not present:
        return None
    low = float(min(c.min() for c in present))
    high = float(max(c.max() for c in present))
    if feature_type == "int" and high - low + 1 <= bins:
        return np.arange(low - 0.5, high + 1.0, 1.0)
    if low == high:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, bins + 1)


def _numeric_stats(
    name: str, feature_type: FeatureType, column: ReadColumn, edges: np.ndarray | None
) -> FeatureStatistics:
    import numpy as np

    values = column.values
    count = len(values)
    # One sort (vectorised, a few ms per million) gives the histogram, the quantiles, the
    # distinct count and the extremes; the moments are summed in the column's own order.
    ordered = np.sort(values)
    histogram = None
    if edges is not None:
        # np.histogram's own count for explicit edges (it sorts the values block by block):
        # values below each edge, the last edge inclusive.
        below = np.concatenate((ordered.searchsorted(edges[:-1], "left"),
                                ordered.searchsorted(edges[-1:], "right")))
        histogram = Histogram(to_float_tuple(edges), tuple(int(c) for c in np.diff(below)))
    if count == 0:
        return FeatureStatistics(
            name, feature_type, 0, column.missing, column.invalid, 0, histogram=histogram
        )
    distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
    low, high = float(ordered[0]), float(ordered[-1])
    # Last use of the sorted copy: numpy may select the quantiles in it (no copy of its own).
    quantiles = np.quantile(ordered, QUANTILES, overwrite_input=True)
    return FeatureStatistics(
        name=name,
        type=feature_type,
        count=count,
        missing=column.missing,
        invalid=column.invalid,
        unique=distinct,
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if count > 1 else None,
        min=low,
        max=high,
        quantiles=tuple((q, float(v)) for q, v in zip(QUANTILES, quantiles, strict=True)),
        histogram=histogram,
    )


def top_values(values: np.ndarray, k: int = TOP_K) -> tuple[tuple[tuple[str, int], ...], int]:
    """The ``k`` most frequent values as ``(value, count)`` pairs and the number of distinct ones.

    Most frequent first, ties broken by value (code-point order) so the same data always gives
    the same order. Counting is a hash table over the whole column; only the values that can
    still make the cut are sorted.
    """
    import numpy as np
    import pandas as pd

    counts = pd.Series(values, copy=False).value_counts(sort=False)
    distinct = len(counts)
    if distinct == 0:
        return (), 0
    numbers = counts.to_numpy()
    labels = counts.index.to_numpy()
    if distinct > k:
        cut = np.partition(numbers, distinct - k)[distinct - k]
        keep = numbers >= cut
        numbers, labels = numbers[keep], labels[keep]
    # str() of each value as numpy spells it (datetime64: ISO with the array's unit).
    text = np.datetime_as_string(labels) if labels.dtype.kind == "M" else labels.astype(str)
    order = np.lexsort((text, -numbers))[:k]
    return tuple((str(text[i]), int(numbers[i])) for i in order), distinct


def _value_stats(name: str, feature_type: FeatureType, column: ReadColumn) -> FeatureStatistics:
    top, distinct = top_values(column.values)
    return FeatureStatistics(
        name=name,
        type=feature_type,
        count=len(column.values),
        missing=column.missing,
        invalid=column.invalid,
        unique=distinct,
        top_values=top,
    )


def feature_statistics(
    name: str, feature_type: FeatureType, columns: Mapping[str, ReadColumn], bins: int
) -> dict[str, FeatureStatistics]:
    """Statistics of one feature in each split, from its values already read as its type."""
    if feature_type in NUMERIC_TYPES:
        edges = _shared_edges([c.values for c in columns.values()], feature_type, bins)
        return {
            split: _numeric_stats(name, feature_type, column, edges)
            for split, column in columns.items()
        }
    return {split: _value_stats(name, feature_type, column) for split, column in columns.items()}


def compute_statistics(
    splits: Mapping[str, pd.DataFrame],
    *,
    schema: Schema | None = None,
    bins: int = DEFAULT_BINS,
) -> Statistics:
    """Compute :class:`Statistics` for each named split (``{"train": df, "eval": df}``).

    Each feature's type comes from ``schema`` when given (so text in a numeric column of the
    eval split is counted as ``invalid`` rather than turning the column into text), else from
    the first split that has the column. Numeric histograms use ``bins`` equal-width bins over
    the range of all splits together, so ``train`` and ``eval`` histograms are comparable bin by
    bin (the anomaly check's drift distance relies on it).

    Example::

        >>> stats = compute_statistics({"train": train_df, "eval": eval_df})
        >>> stats["eval"]["glucose"].quantile(0.5)
    """
    if not splits:
        raise AnalysisError("no splits to compute statistics for", hint="pass {'train': df, ...}")
    if bins < 1:
        raise AnalysisError(f"bins must be at least 1, got {bins}")
    names: dict[str, None] = {}
    for frame in splits.values():
        names.update((str(c), None) for c in frame.columns)

    per_split: dict[str, list[FeatureStatistics]] = {split: [] for split in splits}
    for feature in names:
        if schema is not None and feature in schema:
            feature_type = schema[feature].type
        else:
            first = next(f for f in splits.values() if feature in f.columns)
            feature_type = infer_type(first[feature])
        columns = {
            split: read_column(frame[feature], feature_type)
            for split, frame in splits.items()
            if feature in frame.columns
        }
        for split, stats in feature_statistics(feature, feature_type, columns, bins).items():
            per_split[split].append(stats)

    return Statistics(
        tuple(
            SplitStatistics(str(split), len(splits[split]), tuple(per_split[split]))
            for split in splits
        )
    )
