"""The shipped diabetes data set: reproducible, small, and learnable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from zenml_collab.data import DIABETES_LABEL, diabetes_csv_path

REPO = Path(__file__).resolve().parents[2]


def test_generator_reproduces_the_committed_csv_byte_for_byte() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_dataset.py"),
            "--check",
            "--out",
            str(diabetes_csv_path()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dataset_has_pima_columns_a_slice_column_and_a_binary_label(
    diabetes: pd.DataFrame,
) -> None:
    assert list(diabetes.columns) == [
        "pregnancies",
        "glucose",
        "blood_pressure",
        "skin_thickness",
        "insulin",
        "bmi",
        "diabetes_pedigree",
        "age",
        "clinic",
        DIABETES_LABEL,
    ]
    assert len(diabetes) == 768
    assert diabetes_csv_path().stat().st_size < 100_000
    assert set(diabetes[DIABETES_LABEL].unique()) == {0, 1}
    assert 0.25 < diabetes[DIABETES_LABEL].mean() < 0.45
    assert diabetes["clinic"].nunique() >= 3
    assert not diabetes.isna().any().any()


def test_a_simple_model_learns_the_label(diabetes: pd.DataFrame) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = diabetes.drop(columns=["clinic", DIABETES_LABEL])
    auc = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression()),
        features,
        diabetes[DIABETES_LABEL],
        scoring="roc_auc",
        cv=5,
    ).mean()
    assert auc > 0.75
