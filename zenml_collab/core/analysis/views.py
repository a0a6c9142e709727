"""Schema, statistics and anomalies of a split data set, in one pass, one column at a time.

The pipeline stores these as artifacts of its run (the split step's ``schema``, ``statistics``
and ``anomalies`` outputs), so the views read them back instead of recomputing. The values are
exactly what :func:`infer_schema`, :func:`compute_statistics` and :func:`detect_anomalies` give
on the separate split frames; only the work is organised differently: each column is taken once,
cut into its splits by precomputed row positions, read once per split as the schema's type, and
dropped before the next column, so memory stays near one column per split (plus the frame).

Example::

    >>> views = compute_data_views(frame, split_column="__split__", baseline="train")
    >>> views.statistics["eval"]["glucose"].mean
    >>> views.anomalies_of("eval").ok
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zenml_collab.core.analysis._columns import ReadColumn, infer_type, read_column
from zenml_collab.core.analysis.anomalies import (
    CATEGORICAL_DRIFT_THRESHOLD,
    NUMERIC_DRIFT_THRESHOLD,
    RANGE_TOLERANCE,
    Anomalies,
    Anomaly,
    check_column,
    drift_anomalies,
)
from zenml_collab.core.analysis.errors import AnalysisError
from zenml_collab.core.analysis.schema import FeatureSchema, Schema, feature_schema
from zenml_collab.core.analysis.statistics import (
    DEFAULT_BINS,
    FeatureStatistics,
    SplitStatistics,
    Statistics,
    feature_statistics,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["VIEWS_FORMAT", "DataViews", "compute_data_views", "default_baseline"]

VIEWS_FORMAT = 1
"""Version of what :func:`compute_data_views` produces; part of every stored view's key."""


def default_baseline(split_names: list[str] | tuple[str, ...]) -> str:
    """The split a schema is inferred from: ``train`` when there is one, else the first."""
    if not split_names:
        raise AnalysisError("no splits to take a schema from", hint="split the data first")
    return "train" if "train" in split_names else str(split_names[0])


@dataclass(frozen=True)
class DataViews:
    """The three data views of one split data set; ``anomalies`` has one entry per split other
    than ``baseline``, each checked against the baseline's schema and statistics."""

    baseline: str
    schema: Schema
    statistics: Statistics
    anomalies: tuple[Anomalies, ...]

    def anomalies_of(self, split: str) -> Anomalies:
        for found in self.anomalies:
            if found.split == split:
                return found
        raise AnalysisError(
            f"no anomaly check of split {split!r} against {self.baseline!r}",
            hint=f"checked splits: {', '.join(a.split for a in self.anomalies) or '(none)'}",
        )

    def schema_dict(self) -> dict[str, Any]:
        return {"format": VIEWS_FORMAT, "baseline": self.baseline, "schema": self.schema.to_dict()}

    def statistics_dict(self) -> dict[str, Any]:
        return {"format": VIEWS_FORMAT, "baseline": self.baseline,
                "statistics": self.statistics.to_dict()}

    def anomalies_dict(self) -> dict[str, Any]:
        return {"format": VIEWS_FORMAT, "baseline": self.baseline,
                "splits": [a.to_dict() for a in self.anomalies]}


def _positions(labels: pd.Series) -> dict[str, np.ndarray]:
    """Row positions of each split, in order of first appearance (as ``groupby(sort=False)``)."""
    import numpy as np
    import pandas as pd

    codes, names = pd.factorize(labels, sort=False)
    if len(names) <= 8:  # a pass per split is quicker than sorting the codes
        return {str(name): np.flatnonzero(codes == i) for i, name in enumerate(names)}
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {str(name): order[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}


def _hand_back(column: pd.Series) -> None:
    """A column of a frame mapped from the artifact store, once cut into its splits, is not
    read again here: its pages go back to the system (see ``release_pages``)."""
    import numpy as np

    if isinstance(column.dtype, np.dtype):
        from zenml_collab.core.artifacts.frames import release_pages

        release_pages(column.to_numpy())


def compute_data_views(
    frame: pd.DataFrame,
    *,
    split_column: str,
    baseline: str | None = None,
    bins: int = DEFAULT_BINS,
    range_tolerance: float = RANGE_TOLERANCE,
    numeric_drift_threshold: float = NUMERIC_DRIFT_THRESHOLD,
    categorical_drift_threshold: float = CATEGORICAL_DRIFT_THRESHOLD,
) -> DataViews:
    """Schema (from ``baseline``), statistics (every split) and anomalies (every other split
    against ``baseline``) of ``frame``, whose ``split_column`` names each row's split."""
    if split_column not in frame.columns:
        raise AnalysisError(f"the data has no split column {split_column!r}",
                            hint="views are computed on the split step's output")
    positions = _positions(frame[split_column])
    names = list(positions)
    chosen = baseline if baseline is not None else default_baseline(names)
    if chosen not in positions:
        raise AnalysisError(f"no split {chosen!r} to take the schema from",
                            hint=f"splits: {', '.join(names) or '(none)'}")
    features: list[FeatureSchema] = []
    per_split: dict[str, list[FeatureStatistics]] = {name: [] for name in names}
    checks: dict[str, list[Anomaly]] = {name: [] for name in names if name != chosen}
    for column in frame.columns:
        if column == split_column:
            continue
        name = str(column)
        whole = frame[column]
        parts = {split: whole.iloc[rows] for split, rows in positions.items()}
        _hand_back(whole)
        del whole
        feature_type = infer_type(parts[chosen])
        reads: dict[str, ReadColumn] = {
            split: read_column(part, feature_type) for split, part in parts.items()
        }
        schema_entry = feature_schema(name, feature_type, reads[chosen], len(parts[chosen]))
        features.append(schema_entry)
        for split, stats in feature_statistics(name, feature_type, reads, bins).items():
            per_split[split].append(stats)
        for split in checks:
            checks[split].extend(
                check_column(schema_entry, reads[split], len(parts[split]), range_tolerance))
        del parts, reads
    schema = Schema(tuple(features), len(positions[chosen]))
    statistics = Statistics(tuple(
        SplitStatistics(split, len(positions[split]), tuple(per_split[split])) for split in names))
    anomalies = []
    for split, found in checks.items():
        drift, drifted = drift_anomalies(
            schema, statistics, split=split, baseline=chosen,
            numeric_drift_threshold=numeric_drift_threshold,
            categorical_drift_threshold=categorical_drift_threshold)
        anomalies.append(Anomalies(split, chosen, tuple(found + drifted), tuple(drift)))
    return DataViews(chosen, schema, statistics, tuple(anomalies))


def views_from_dicts(schema: Mapping[str, Any] | None = None,
                     statistics: Mapping[str, Any] | None = None,
                     anomalies: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Decode stored view documents: ``{"schema": Schema, "statistics": ..., "anomalies":
    {split: Anomalies}, "baseline": str}`` for the documents given."""
    from zenml_collab.core.analysis.typecheck import check_dataclass

    # The documents are a teammate's artifacts: anything malformed is one clear error, never
    # a TypeError from deep inside a table or a plot.
    try:
        out: dict[str, Any] = {}
        for doc in (schema, statistics, anomalies):
            if doc is not None:
                if doc.get("format") != VIEWS_FORMAT:
                    raise AnalysisError(f"stored data views have format {doc.get('format')!r}, "
                                        f"this version reads {VIEWS_FORMAT}",
                                        hint="upgrade zenml-collab")
                out["baseline"] = str(doc["baseline"])
        if schema is not None:
            out["schema"] = Schema.from_dict(schema["schema"])
            check_dataclass(out["schema"], "schema")
        if statistics is not None:
            out["statistics"] = Statistics.from_dict(statistics["statistics"])
            check_dataclass(out["statistics"], "statistics")
        if anomalies is not None:
            out["anomalies"] = {a["split"]: Anomalies.from_dict(a) for a in anomalies["splits"]}
            for split, value in out["anomalies"].items():
                if not isinstance(split, str):
                    raise TypeError(f"split name {split!r} is not text")
                check_dataclass(value, f"anomalies[{split!r}]")
    except AnalysisError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise AnalysisError(
            f"the stored data views are malformed ({type(exc).__name__}: {str(exc)[:200]}); "
            "they were not shown",
            hint="they were written by a broken or hostile client: re-run the pipeline's split "
                 "step under a new pipeline name to store them again") from None
    return out
