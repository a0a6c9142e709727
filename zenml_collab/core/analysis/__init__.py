"""Data validation and model evaluation, TFDV/TFMA-style, as pure functions over pandas values.

Every function returns a frozen dataclass with ``to_dict()`` (JSON-safe: no NaN) and
``from_dict()``; nothing here does I/O except :func:`write_html_report`.

Schema and statistics::

    infer_schema(df) -> Schema
        per feature: type (int, float, bool, categorical, string, datetime), nullable, presence,
        domain (categories of a text column with <= MAX_CATEGORIES=50 values; (min, max) range of
        numerics). ``schema["age"].value_range``
    compute_statistics({"train": df, "eval": df}, schema=None, bins=10) -> Statistics
        per split and feature: count, missing, invalid, unique, mean, std, min, max, quantiles
        (p1 p5 p25 p50 p75 p95 p99), top values, histogram on edges shared by all splits.
        ``stats["eval"]["glucose"].quantile(0.5)``

Anomalies (the eval split against the train schema and statistics)::

    detect_anomalies(schema, stats, eval_df, split="eval", baseline="train",
                     numeric_drift_threshold=0.3, categorical_drift_threshold=0.2,
                     range_tolerance=0.25) -> Anomalies
        kinds: missing_column, unexpected_column, type_mismatch, unexpected_missing,
        out_of_domain, out_of_range (errors/warnings) and drift (Jensen-Shannon distance on the
        shared histogram bins for numerics, L-infinity distance of value frequencies for
        categoricals). ``anomalies.ok``, ``.errors``, ``.warnings``, ``.drift``

Evaluation::

    evaluate(y_true, y_pred, y_score=None, task="classification", metrics=None,
             slices=eval_df, slice_columns=["clinic"], positive_label=None) -> Evaluation
        classification: accuracy precision recall f1 roc_auc log_loss; regression: mae mse rmse
        r2; overall and per slice value. ``evaluation.slice("clinic", "north").metrics["f1"]``

Presentation::

    render_value(value) / render_schema / render_statistics / render_anomalies /
    render_evaluation -> rich renderable (``Console().print(render_value(value))``)
    write_html_report(value, path, title=None) -> Path
        one self-contained HTML file (inline CSS, plots as base64 PNG; needs matplotlib)

Bad input (unknown metric, split or slice column) raises :class:`AnalysisError`, a
``CollabError``. Names are imported lazily on first use so ``import zenml_collab.core.analysis``
stays cheap; pandas, scikit-learn and matplotlib load only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zenml_collab.core.analysis.anomalies import (
        CATEGORICAL_DRIFT_THRESHOLD,
        NUMERIC_DRIFT_THRESHOLD,
        RANGE_TOLERANCE,
        Anomalies,
        Anomaly,
        DriftScore,
        detect_anomalies,
    )
    from zenml_collab.core.analysis.errors import AnalysisError
    from zenml_collab.core.analysis.evaluation import (
        CLASSIFICATION_METRICS,
        REGRESSION_METRICS,
        Evaluation,
        SliceMetrics,
        evaluate,
    )
    from zenml_collab.core.analysis.render import (
        render_anomalies,
        render_evaluation,
        render_schema,
        render_statistics,
        render_value,
    )
    from zenml_collab.core.analysis.report import write_html_report
    from zenml_collab.core.analysis.schema import (
        MAX_CATEGORIES,
        FeatureSchema,
        Schema,
        infer_schema,
    )
    from zenml_collab.core.analysis.statistics import (
        FeatureStatistics,
        Histogram,
        SplitStatistics,
        Statistics,
        compute_statistics,
    )

_EXPORTS: dict[str, str] = {
    "AnalysisError": "errors",
    "MAX_CATEGORIES": "schema",
    "FeatureSchema": "schema",
    "Schema": "schema",
    "infer_schema": "schema",
    "Histogram": "statistics",
    "FeatureStatistics": "statistics",
    "SplitStatistics": "statistics",
    "Statistics": "statistics",
    "compute_statistics": "statistics",
    "NUMERIC_DRIFT_THRESHOLD": "anomalies",
    "CATEGORICAL_DRIFT_THRESHOLD": "anomalies",
    "RANGE_TOLERANCE": "anomalies",
    "Anomaly": "anomalies",
    "Anomalies": "anomalies",
    "DriftScore": "anomalies",
    "detect_anomalies": "anomalies",
    "CLASSIFICATION_METRICS": "evaluation",
    "REGRESSION_METRICS": "evaluation",
    "SliceMetrics": "evaluation",
    "Evaluation": "evaluation",
    "evaluate": "evaluation",
    "render_value": "render",
    "render_schema": "render",
    "render_statistics": "render",
    "render_anomalies": "render",
    "render_evaluation": "render",
    "write_html_report": "report",
}

__all__ = [
    "CATEGORICAL_DRIFT_THRESHOLD",
    "CLASSIFICATION_METRICS",
    "MAX_CATEGORIES",
    "NUMERIC_DRIFT_THRESHOLD",
    "RANGE_TOLERANCE",
    "REGRESSION_METRICS",
    "AnalysisError",
    "Anomalies",
    "Anomaly",
    "DriftScore",
    "Evaluation",
    "FeatureSchema",
    "FeatureStatistics",
    "Histogram",
    "Schema",
    "SliceMetrics",
    "SplitStatistics",
    "Statistics",
    "compute_statistics",
    "detect_anomalies",
    "evaluate",
    "infer_schema",
    "render_anomalies",
    "render_evaluation",
    "render_schema",
    "render_statistics",
    "render_value",
    "write_html_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
