"""Fixtures for the analysis tests: the shipped data set, clean splits of it, a trained model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from zenml_collab.data import DIABETES_LABEL, load_diabetes


def random_split(
    frame: pd.DataFrame, seed: int, eval_fraction: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shuffled train/eval split, as a pipeline's splitter step would make it."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = round(len(frame) * (1 - eval_fraction))
    return (
        frame.iloc[order[:cut]].reset_index(drop=True),
        frame.iloc[order[cut:]].reset_index(drop=True),
    )


@pytest.fixture(scope="session")
def diabetes() -> pd.DataFrame:
    return load_diabetes()


@pytest.fixture(scope="session")
def clean_split(diabetes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return random_split(diabetes, seed=7)


@dataclass(frozen=True)
class Predictions:
    eval_frame: pd.DataFrame
    y_true: np.ndarray
    y_pred: np.ndarray
    y_proba: np.ndarray  # predict_proba matrix, columns in class order


@pytest.fixture(scope="session")
def predictions(clean_split: tuple[pd.DataFrame, pd.DataFrame]) -> Predictions:
    """A logistic regression trained on the train split and applied to the eval split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, evaluation = clean_split
    features = [c for c in train.columns if c not in (DIABETES_LABEL, "clinic")]
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(train[features], train[DIABETES_LABEL])
    return Predictions(
        eval_frame=evaluation,
        y_true=evaluation[DIABETES_LABEL].to_numpy(),
        y_pred=model.predict(evaluation[features]),
        y_proba=model.predict_proba(evaluation[features]),
    )


Splitter = Callable[..., tuple[pd.DataFrame, pd.DataFrame]]


@pytest.fixture(scope="session")
def split() -> Splitter:
    """``split(frame, seed=..., eval_fraction=...)``: :func:`random_split` for tests."""
    return random_split
