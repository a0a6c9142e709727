"""evaluate: overall and per-slice metrics against scikit-learn computed independently."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from zenml_collab.core.analysis import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    AnalysisError,
    Evaluation,
    evaluate,
)

ALL_CLASSIFICATION = list(CLASSIFICATION_METRICS)


def sklearn_classification(y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y, score) if len(set(y)) == 2 else None,
        "log_loss": skm.log_loss(y, score, labels=[0, 1]),
    }


def assert_metrics_equal(got: Any, expected: dict[str, Any]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == (None if value is None else pytest.approx(value)), name


def test_overall_classification_metrics_match_sklearn(predictions: Any) -> None:
    score = predictions.y_proba[:, 1]
    result = evaluate(predictions.y_true, predictions.y_pred, score, metrics=ALL_CLASSIFICATION)

    assert result.overall.count == len(predictions.y_true)
    assert result.positive_label == "1"
    assert_metrics_equal(
        result.overall.metrics,
        sklearn_classification(predictions.y_true, predictions.y_pred, score),
    )


def test_per_slice_metrics_match_sklearn_on_the_slice_rows(predictions: Any) -> None:
    score = predictions.y_proba[:, 1]
    frame = predictions.eval_frame
    result = evaluate(
        predictions.y_true,
        predictions.y_pred,
        score,
        metrics=ALL_CLASSIFICATION,
        slices=frame,
        slice_columns=["clinic"],
    )

    assert result.slice_columns == ("clinic",)
    assert [s.value for s in result.by_column("clinic")] == sorted(frame["clinic"].unique())
    for clinic, rows in frame.groupby("clinic").groups.items():
        mask = frame.index.isin(rows)
        entry = result.slice("clinic", clinic)
        assert entry.count == mask.sum()
        assert_metrics_equal(
            entry.metrics,
            sklearn_classification(predictions.y_true[mask], predictions.y_pred[mask], score[mask]),
        )


def test_default_metrics_add_roc_auc_only_when_scores_are_given(predictions: Any) -> None:
    without = evaluate(predictions.y_true, predictions.y_pred)
    with_scores = evaluate(predictions.y_true, predictions.y_pred, predictions.y_proba[:, 1])

    assert without.metric_names == ("accuracy", "precision", "recall", "f1")
    assert with_scores.metric_names == ("accuracy", "precision", "recall", "f1", "roc_auc")


def test_a_predict_proba_matrix_gives_the_same_result_as_the_positive_column(
    predictions: Any,
) -> None:
    args = (predictions.y_true, predictions.y_pred)
    matrix = evaluate(*args, predictions.y_proba, metrics=ALL_CLASSIFICATION)
    column = evaluate(*args, predictions.y_proba[:, 1], metrics=ALL_CLASSIFICATION)
    assert matrix == column


def test_multiclass_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    pred = np.where(rng.uniform(size=200) < 0.7, y, rng.integers(0, 3, 200))
    proba = rng.dirichlet(np.ones(3), 200)
    proba[np.arange(200), pred] += 1
    proba /= proba.sum(axis=1, keepdims=True)

    result = evaluate(y, pred, proba, metrics=ALL_CLASSIFICATION)

    assert_metrics_equal(
        result.overall.metrics,
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average="macro"),
            "recall": skm.recall_score(y, pred, average="macro"),
            "f1": skm.f1_score(y, pred, average="macro"),
            "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr"),
            "log_loss": skm.log_loss(y, proba),
        },
    )


def test_regression_metrics_overall_and_per_slice_match_sklearn(diabetes: pd.DataFrame) -> None:
    from sklearn.linear_model import LinearRegression

    features = diabetes[["bmi", "age", "insulin"]]
    target = diabetes["glucose"].to_numpy(dtype=float)
    pred = LinearRegression().fit(features, target).predict(features)

    result = evaluate(target, pred, task="regression", slices={"clinic": diabetes["clinic"]})

    assert result.metric_names == REGRESSION_METRICS
    for entry in (result.overall, *result.slices):
        mask = (
            np.ones(len(target), bool)
            if entry.column is None
            else (diabetes["clinic"] == entry.value).to_numpy()
        )
        y, p = target[mask], pred[mask]
        assert_metrics_equal(
            entry.metrics,
            {
                "mae": skm.mean_absolute_error(y, p),
                "mse": skm.mean_squared_error(y, p),
                "rmse": np.sqrt(skm.mean_squared_error(y, p)),
                "r2": skm.r2_score(y, p),
            },
        )


def test_metrics_undefined_on_a_slice_are_none_and_json_safe() -> None:
    y = np.array([0, 0, 1, 1, 0])
    score = np.array([0.1, 0.3, 0.8, 0.6, 0.2])
    groups = pd.Series(["a", "a", "b", "b", None])

    result = evaluate(y, (score > 0.5).astype(int), score, slices={"group": groups})

    assert result.overall.metrics["roc_auc"] == pytest.approx(1.0)
    assert [s.value for s in result.slices] == ["a", "b", "<missing>"]
    assert result.slice("group", "a").metrics["roc_auc"] is None  # one class only
    restored = Evaluation.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert restored == result


def test_slices_of_numbers_come_in_numeric_order() -> None:
    y = np.array([0, 1] * 6)
    result = evaluate(y, y, slices={"n": [2, 10, 1] * 4})
    assert [s.value for s in result.slices] == ["1", "2", "10"]


def test_an_unknown_metric_is_an_error_listing_the_valid_ones(predictions: Any) -> None:
    with pytest.raises(AnalysisError) as info:
        evaluate(predictions.y_true, predictions.y_pred, metrics=["accuracy", "auc"])
    assert "auc" in info.value.message
    for name in CLASSIFICATION_METRICS:
        assert name in (info.value.hint or "")

    with pytest.raises(AnalysisError, match="mae"):
        evaluate([1.0, 2.0], [1.0, 2.0], task="regression", metrics=["accuracy"])


def test_a_slice_column_that_does_not_exist_is_an_error(predictions: Any) -> None:
    with pytest.raises(AnalysisError) as info:
        evaluate(
            predictions.y_true,
            predictions.y_pred,
            slices=predictions.eval_frame,
            slice_columns=["clinik"],
        )
    assert "clinik" in info.value.message
    assert "clinic" in (info.value.hint or "")


def test_score_metrics_without_scores_are_an_error(predictions: Any) -> None:
    with pytest.raises(AnalysisError, match="roc_auc") as info:
        evaluate(predictions.y_true, predictions.y_pred, metrics=["roc_auc"])
    assert "y_score" in (info.value.hint or "")


def test_predictions_of_another_length_are_an_error(predictions: Any) -> None:
    with pytest.raises(AnalysisError, match="y_pred has 3 values"):
        evaluate(predictions.y_true, [0, 1, 0])
    with pytest.raises(AnalysisError, match="slice column 'g'"):
        evaluate(predictions.y_true, predictions.y_pred, slices={"g": [1, 2]})


def test_scores_are_read_as_probabilities_of_the_chosen_positive_label() -> None:
    y = np.array(["yes", "no", "yes", "no", "yes"])
    p_yes = np.array([0.9, 0.6, 0.2, 0.1, 0.7])
    pred = np.where(p_yes > 0.5, "yes", "no")
    names = ["f1", "roc_auc", "log_loss"]

    as_yes = evaluate(y, pred, p_yes, metrics=names)
    as_no = evaluate(y, pred, 1 - p_yes, metrics=names, positive_label="no")

    assert as_yes.positive_label == "yes" and as_no.positive_label == "no"
    assert as_yes.overall.metrics["log_loss"] == pytest.approx(skm.log_loss(y, p_yes))
    assert as_no.overall.metrics["log_loss"] == pytest.approx(skm.log_loss(y, p_yes))
    assert as_no.overall.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y == "no", 1 - p_yes)
    )
    assert as_no.overall.metrics["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="no"))
