"""compute_data_views: one pass over a split frame gives what the three separate calls give."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from zenml_collab.core.analysis import AnalysisError
from zenml_collab.core.analysis.views import (
    DataViews,
    compute_data_views,
    default_baseline,
    views_from_dicts,
)

sys.path.insert(0, str(Path(__file__).parent))
from golden_cases import _guide_splits, _messy_splits, data_views


def _joined(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f.assign(__split__=name) for name, f in splits.items()], ignore_index=True)


@pytest.mark.parametrize("make", [_guide_splits, _messy_splits])
def test_one_pass_views_equal_schema_statistics_and_anomalies_computed_separately(make):
    splits = make()
    if "gone" in splits["train"]:  # one frame holds one set of columns
        splits = {k: f.drop(columns=["gone", "extra"], errors="ignore") for k, f in splits.items()}
    joined = _joined(splits)
    # What the views did before: the split frames cut from the one frame the split step stores.
    expected = data_views({str(k): g.drop(columns=["__split__"])
                           for k, g in joined.groupby("__split__", sort=False)})
    views = compute_data_views(joined, split_column="__split__")
    assert views.baseline == "train"
    assert views.schema.to_dict() == expected["schema"]
    assert views.statistics.to_dict() == expected["statistics"]
    assert views.anomalies_of("eval").to_dict() == expected["anomalies"]


def test_stored_view_documents_decode_to_the_same_values():
    views = compute_data_views(_joined(_guide_splits()), split_column="__split__")
    decoded = views_from_dicts(views.schema_dict(), views.statistics_dict(),
                               views.anomalies_dict())
    assert decoded["baseline"] == "train"
    assert DataViews("train", decoded["schema"], decoded["statistics"],
                     tuple(decoded["anomalies"].values())) == views


def test_the_baseline_is_train_when_present_else_the_first_split():
    assert default_baseline(["eval", "train"]) == "train"
    assert default_baseline(["fit", "holdout"]) == "fit"


def test_an_unknown_baseline_names_the_splits():
    with pytest.raises(AnalysisError, match="no split 'fit'") as info:
        compute_data_views(_joined(_guide_splits()), split_column="__split__", baseline="fit")
    assert "train" in (info.value.hint or "")
