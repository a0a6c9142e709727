"""Binary metrics counted per slice are scikit-learn's numbers, to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from zenml_collab.core.analysis.binary_counts import counted_scorers
from zenml_collab.core.analysis.evaluation import evaluate

METRICS = ("accuracy", "precision", "recall", "f1")


def sklearn_scores(y: np.ndarray, p: np.ndarray, positive: object) -> dict[str, float]:
    binary = {"average": "binary", "pos_label": positive, "zero_division": 0}
    return {"accuracy": float(skm.accuracy_score(y, p)),
            "precision": float(skm.precision_score(y, p, **binary)),
            "recall": float(skm.recall_score(y, p, **binary)),
            "f1": float(skm.f1_score(y, p, **binary))}


@pytest.mark.parametrize("labels", [np.array([0, 1]), np.array([3, 7]), np.array([5]),
                                    np.array([False, True])], ids=["0-1", "3-7", "one", "bool"])
def test_counted_metrics_equal_scikit_learns_on_random_labels(labels):
    rng = np.random.default_rng(len(labels) * 7 + int(labels[-1]))
    for _ in range(300):
        n = int(rng.integers(1, 40))
        y, p = rng.choice(labels, n), rng.choice(labels, n)
        classes = np.union1d(y, p)
        scorers = counted_scorers(METRICS, y, p, classes, classes[-1])
        assert set(scorers) == set(METRICS)
        got = {m: f(y, p, None) for m, f in scorers.items()}
        assert got == sklearn_scores(y, p, classes[-1])


@pytest.mark.parametrize(("truth", "predicted", "positive"), [
    (np.array([0, 1, 2]), np.array([0, 1, 2]), 2),              # three classes
    (np.array(["a", "b"]), np.array(["a", "b"]), "b"),           # text labels
    (np.array([0.0, 1.0]), np.array([0.0, 1.0]), 1.0),           # float labels
    (np.array([0, 1]), np.array([0, 1]), 5),                     # positive not a class
], ids=["multiclass", "text", "float", "unknown-positive"])
def test_anything_but_binary_integer_labels_is_left_to_scikit_learn(truth, predicted, positive):
    classes = np.union1d(truth, predicted)
    assert counted_scorers(METRICS, truth, predicted, classes, positive) == {}


def test_only_counted_metrics_are_counted():
    y = np.array([0, 1, 1])
    assert set(counted_scorers(("f1", "roc_auc", "log_loss"), y, y, np.array([0, 1]), 1)) == {"f1"}


def test_sliced_evaluation_equals_scikit_learn_per_slice():
    rng = np.random.default_rng(11)
    n = 5_000
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.8, y, 1 - y)
    clinic = rng.choice(np.array(["north", "south", "harbor", "campus"]), n)
    clinic[::97] = "tiny"
    result = evaluate(y, p, metrics=list(METRICS), slices=pd.DataFrame({"clinic": clinic}))
    assert dict(result.overall.metrics) == sklearn_scores(y, p, 1)
    for value in ("north", "south", "harbor", "campus", "tiny"):
        rows = clinic == value
        assert dict(result.slice("clinic", value).metrics) == sklearn_scores(y[rows], p[rows], 1)
