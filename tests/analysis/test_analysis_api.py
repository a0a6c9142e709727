"""The public surface of zenml_collab.core.analysis: pinned, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import zenml_collab.core.analysis as analysis


def test_public_api_is_pinned() -> None:
    assert analysis.__all__ == [
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
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None


def test_analysis_errors_are_collab_errors() -> None:
    from zenml_collab.errors import CollabError

    assert issubclass(analysis.AnalysisError, CollabError)


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import sys, zenml_collab.core.analysis as a; a.Schema; a.Anomalies; "
        "print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'matplotlib', 'scipy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
