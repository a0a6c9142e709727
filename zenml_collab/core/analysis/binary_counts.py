"""Accuracy, precision, recall and F1 of a binary classifier, counted rather than validated.

scikit-learn's metric functions check their inputs on every call (label types, the set of
labels, a confusion matrix built through a label encoder), which costs tens of milliseconds
per call on a few hundred thousand rows, for each metric of each slice. For integer labels of
a binary task the four metrics are ratios of three counts, so they are counted here with
whole-array comparisons, with scikit-learn's formulas (``average="binary"``,
``zero_division=0``) so the numbers are the same to the last bit; the tests compare them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["COUNTED_METRICS", "counted_scorers"]

COUNTED_METRICS = frozenset({"accuracy", "precision", "recall", "f1"})

Scorer = Callable[["np.ndarray", "np.ndarray", "np.ndarray | None"], "float | None"]


def _ratio(numerator: float, denominator: float) -> float:
    # scikit-learn's _prf_divide with zero_division=0: a zero denominator gives 0.0.
    return 0.0 if denominator == 0 else float(numerator) / float(denominator)


def counted_scorers(metrics: tuple[str, ...], truth: Any, predicted: Any,
                    classes: Any, positive: Any) -> dict[str, Scorer]:
    """Scorers computed from counts for those of ``metrics`` that can be (maybe none).

    They apply to one-dimensional integer (or boolean) labels of at most two classes, one of
    them ``positive`` (else scikit-learn refuses the positive label: its error is kept).
    Anything else is left to scikit-learn, whose input checks then speak for themselves.
    """
    import numpy as np

    if (len(classes) > 2 or truth.ndim != 1 or predicted.ndim != 1
            or truth.dtype.kind not in "biu" or predicted.dtype.kind not in "biu"
            or (len(classes) == 2 and not np.any(classes == positive))):
        return {}

    def accuracy(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        # np.average of the matches, as accuracy_score: the count over the rows.
        return float(np.count_nonzero(y == p)) / len(y)

    def counts(y: np.ndarray, p: np.ndarray) -> tuple[int, int, int]:
        actual, said = y == positive, p == positive
        return (int(np.count_nonzero(actual & said)), int(np.count_nonzero(said)),
                int(np.count_nonzero(actual)))

    def precision(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        hits, said, _actual = counts(y, p)
        return _ratio(hits, said)

    def recall(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        hits, _said, actual = counts(y, p)
        return _ratio(hits, actual)

    def f1(y: np.ndarray, p: np.ndarray, _: Any) -> float:
        # (1 + beta^2) tp / (beta^2 (tp + fn) + (tp + fp)), beta = 1, in float64.
        hits, said, actual = counts(y, p)
        return _ratio(2.0 * float(hits), 1.0 * float(actual) + float(said))

    table: dict[str, Scorer] = {"accuracy": accuracy, "precision": precision,
                                "recall": recall, "f1": f1}
    return {m: table[m] for m in metrics if m in table}
