"""Model evaluation: metrics overall and per slice (value of a column), with scikit-learn
(binary accuracy, precision, recall and F1 counted: :mod:`.binary_counts`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from zenml_collab.core.analysis.binary_counts import counted_scorers
from zenml_collab.core.analysis.errors import AnalysisError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CLASSIFICATION_METRICS",
    "MISSING_SLICE_VALUE",
    "REGRESSION_METRICS",
    "Evaluation",
    "SliceMetrics",
    "evaluate",
]

Task = Literal["classification", "regression"]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
"""Valid classification metrics; ``roc_auc`` and ``log_loss`` need ``y_score``."""

REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")
"""Valid regression metrics."""

MISSING_SLICE_VALUE = "<missing>"
"""Slice value under which rows with a null slice column are grouped."""

_SCORE_METRICS = frozenset({"roc_auc", "log_loss"})


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics over a subset of rows: all of them (``column`` None) or where ``column == value``.

    A metric that is undefined on the subset (ROC AUC of a slice holding one class, R2 of one
    row) is None rather than NaN, so the value survives JSON.
    """

    column: str | None
    value: str | None
    count: int
    metrics: Mapping[str, float | None] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def label(self) -> str:
        return "overall" if self.column is None else f"{self.column}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "count": self.count,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SliceMetrics:
        return cls(data["column"], data["value"], int(data["count"]), data["metrics"])


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`evaluate`: ``overall`` metrics and one entry per slice value."""

    task: Task
    metric_names: tuple[str, ...]
    overall: SliceMetrics
    slices: tuple[SliceMetrics, ...] = ()
    positive_label: str | None = None

    @property
    def slice_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.column for s in self.slices if s.column is not None))

    def by_column(self, column: str) -> tuple[SliceMetrics, ...]:
        """Every slice of ``column``, in value order."""
        found = tuple(s for s in self.slices if s.column == column)
        if not found:
            raise AnalysisError(
                f"no slices by {column!r} in this evaluation",
                hint=f"sliced by: {', '.join(self.slice_columns) or '(nothing)'}",
            )
        return found

    def slice(self, column: str, value: Any) -> SliceMetrics:
        """The slice where ``column == value`` (compared as text)."""
        for entry in self.by_column(column):
            if entry.value == str(value):
                return entry
        raise AnalysisError(f"no slice {column}={value!r} in this evaluation")

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric_names": list(self.metric_names),
            "positive_label": self.positive_label,
            "overall": self.overall.to_dict(),
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        return cls(
            task=data["task"],
            metric_names=tuple(data["metric_names"]),
            overall=SliceMetrics.from_dict(data["overall"]),
            slices=tuple(SliceMetrics.from_dict(s) for s in data["slices"]),
            positive_label=data.get("positive_label"),
        )


def _as_array(values: Any, name: str) -> np.ndarray:
    import numpy as np

    array = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values)
    if array.ndim == 0:
        raise AnalysisError(f"{name} must be a sequence of values, got a scalar")
    return array


def _slice_values(values: Any, name: str) -> Any:
    """A slice column as pandas holds it (text stays in Arrow: grouping never needs a Python
    string per row), other sequences as arrays."""
    array = getattr(values, "array", None)
    if array is not None and getattr(array, "ndim", 1) == 1:
        return array
    return _as_array(values, name)


def _choose_metrics(task: str, metrics: Sequence[str] | None, has_score: bool) -> tuple[str, ...]:
    if task not in ("classification", "regression"):
        raise AnalysisError(
            f"unknown task {task!r}", hint="use task='classification' or task='regression'"
        )
    valid = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metrics is None:
        if task == "regression":
            return REGRESSION_METRICS
        return ("accuracy", "precision", "recall", "f1") + (("roc_auc",) if has_score else ())
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in valid]
    if unknown:
        raise AnalysisError(
            f"unknown {task} metric{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"valid {task} metrics: {', '.join(valid)}",
        )
    needs_score = [m for m in metrics if m in _SCORE_METRICS]
    if needs_score and not has_score:
        raise AnalysisError(
            f"metric {needs_score[0]!r} needs predicted scores",
            hint="pass y_score= (e.g. model.predict_proba(X)[:, 1] for a binary classifier)",
        )
    return tuple(dict.fromkeys(metrics))


def _slice_table(
    slices: Mapping[str, Any] | pd.DataFrame | None,
    slice_columns: Sequence[str] | None,
    rows: int,
) -> dict[str, Any]:
    if slices is None:
        if slice_columns:
            raise AnalysisError("slice_columns given without slices", hint="pass slices=eval_df")
        return {}
    available = [str(c) for c in slices]
    chosen = list(available if slice_columns is None else slice_columns)
    missing = [c for c in chosen if c not in available]
    if missing:
        raise AnalysisError(
            f"slice column{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)}",
            hint=f"available columns: {', '.join(available) or '(none)'}",
        )
    table = {}
    for column in chosen:
        values = _slice_values(slices[column], f"slice {column!r}")
        if len(values) != rows:
            raise AnalysisError(
                f"slice column {column!r} has {len(values)} values but there are {rows} labels",
                hint="slices are aligned with y_true by position; pass the evaluation rows only",
            )
        table[column] = values
    return table


def _classification_scorers(
    metrics: tuple[str, ...], classes: np.ndarray, positive: Any
) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float | None]]:
    from sklearn import metrics as skm

    binary = len(classes) <= 2
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": positive}
        if binary
        else {"average": "macro", "labels": classes}
    )

    def roc_auc(y: np.ndarray, _: np.ndarray, score: np.ndarray | None) -> float | None:
        # AUC needs every class present in the subset; a one-class slice has none.
        if score is None or len(set(y.tolist())) < len(classes) or len(classes) < 2:
            return None
        if binary:
            return float(skm.roc_auc_score(y == positive, score))
        return float(skm.roc_auc_score(y, score, multi_class="ovr", labels=classes))

    def log_loss(y: np.ndarray, _: np.ndarray, score: np.ndarray | None) -> float | None:
        if score is None or len(classes) < 2:
            return None
        if binary:
            # Columns in class order, whichever label is positive (sklearn would assume the
            # larger one for a 1-D score).
            import numpy as np

            negative = 1.0 - score
            score = np.column_stack(
                (score, negative) if positive == classes[0] else (negative, score)
            )
        return float(skm.log_loss(y, score, labels=classes))

    table: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float | None]] = {
        "accuracy": lambda y, p, _: float(skm.accuracy_score(y, p)),
        "precision": lambda y, p, _: float(skm.precision_score(y, p, zero_division=0, **averaging)),
        "recall": lambda y, p, _: float(skm.recall_score(y, p, zero_division=0, **averaging)),
        "f1": lambda y, p, _: float(skm.f1_score(y, p, zero_division=0, **averaging)),
        "roc_auc": roc_auc,
        "log_loss": log_loss,
    }
    return {m: table[m] for m in metrics}


def _regression_scorers(
    metrics: tuple[str, ...],
) -> dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float | None]]:
    from sklearn import metrics as skm

    def r2(y: np.ndarray, p: np.ndarray, _: Any) -> float | None:
        return float(skm.r2_score(y, p)) if len(y) >= 2 else None  # undefined on one row

    table: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float | None]] = {
        "mae": lambda y, p, _: float(skm.mean_absolute_error(y, p)),
        "mse": lambda y, p, _: float(skm.mean_squared_error(y, p)),
        "rmse": lambda y, p, _: float(math.sqrt(skm.mean_squared_error(y, p))),
        "r2": r2,
    }
    return {m: table[m] for m in metrics}


def _slice_groups(values: Any) -> list[tuple[str, np.ndarray]]:
    """Each slice value as text, in natural order (2 before 10) with ``<missing>`` last, and the
    positions of its rows: one hash pass (factorize) and one stable sort of the codes, so every
    slice is a contiguous run of positions and no per-row Python runs."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    present = list(uniques.tolist() if hasattr(uniques, "tolist") else uniques)
    try:
        ordered = sorted(present)
    except TypeError:  # mixed types: fall back to their text
        ordered = sorted(present, key=str)
    keys = list(dict.fromkeys(str(v) for v in ordered))
    if (codes < 0).any():
        keys.append(MISSING_SLICE_VALUE)
    # Values with the same text (1 and "1") are one slice, as they are in the stored result.
    slot = {key: index for index, key in enumerate(keys)}
    key_of_code = np.array([slot[str(v)] for v in present] + [slot.get(MISSING_SLICE_VALUE, 0)],
                           dtype=np.int64)
    grouped = key_of_code[codes]  # code -1 (missing) picks the last entry
    order = np.argsort(grouped, kind="stable")
    bounds = np.searchsorted(grouped[order], np.arange(len(keys) + 1))
    return [(key, order[bounds[i]:bounds[i + 1]]) for i, key in enumerate(keys)]


def evaluate(
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    *,
    task: Task = "classification",
    metrics: Sequence[str] | None = None,
    slices: Mapping[str, Any] | pd.DataFrame | None = None,
    slice_columns: Sequence[str] | None = None,
    positive_label: Any = None,
) -> Evaluation:
    """Compute ``metrics`` over all rows and per value of each slice column.

    Classification metrics: accuracy, precision, recall, f1 (binary: of ``positive_label``,
    default the larger label, i.e. 1 of 0/1; multiclass: macro averages), roc_auc and log_loss
    (both need ``y_score``: the positive class's probability for binary tasks, or an
    ``(n, classes)`` matrix with columns in sorted class order, as ``predict_proba`` returns).
    Default: the first four, plus roc_auc when scores are given. Regression: mae, mse, rmse, r2
    (all by default).

    ``slices`` is a DataFrame or a mapping of column name to values, aligned with ``y_true`` by
    position; ``slice_columns`` picks some of its columns (default all). Rows with a null slice
    value form the slice ``"<missing>"``.

    Example::

        >>> result = evaluate(y, model.predict(X), model.predict_proba(X)[:, 1],
        ...                   slices=X, slice_columns=["clinic"])
        >>> result.slice("clinic", "north").metrics["f1"]
    """
    import numpy as np

    truth = _as_array(y_true, "y_true")
    predicted = _as_array(y_pred, "y_pred")
    score = None if y_score is None else _as_array(y_score, "y_score")
    rows = len(truth)
    for name, other in (("y_pred", predicted), ("y_score", score)):
        if other is not None and len(other) != rows:
            raise AnalysisError(
                f"{name} has {len(other)} values but y_true has {rows}",
                hint="pass predictions for exactly the evaluated rows",
            )
    if rows == 0:
        raise AnalysisError("nothing to evaluate: y_true is empty")
    chosen = _choose_metrics(task, metrics, score is not None)
    table = _slice_table(slices, slice_columns, rows)

    positive: Any = None
    if task == "classification":
        if truth.dtype.kind in "biuf" and predicted.dtype.kind in "biuf":
            classes = np.union1d(truth, predicted)  # one sort in C, no Python object per row
        else:  # text or mixed labels: compared as Python values, as they always were
            classes = np.array(sorted(set(truth.tolist()) | set(predicted.tolist())))
        positive = classes[-1] if positive_label is None else positive_label
        if score is not None and score.ndim == 2 and len(classes) <= 2:
            # Binary scores given as predict_proba's matrix: keep the positive class's column.
            score = score[:, int(np.searchsorted(classes, positive))]
        scorers = _classification_scorers(chosen, classes, positive)
        # The same numbers from counts where they are ratios of counts (binary integer labels).
        scorers.update(counted_scorers(chosen, truth, predicted, classes, positive))
    else:
        truth, predicted = truth.astype(float), predicted.astype(float)
        scorers = _regression_scorers(chosen)

    def measure(at: np.ndarray | None, column: str | None, value: str | None) -> SliceMetrics:
        y, p = (truth, predicted) if at is None else (truth[at], predicted[at])
        s = score if score is None or at is None else score[at]
        return SliceMetrics(column, value, len(y), {m: f(y, p, s) for m, f in scorers.items()})

    slices_out = []
    for column, values in table.items():
        for value, positions in _slice_groups(values):
            slices_out.append(measure(positions, column, value))
    return Evaluation(
        task=task,
        metric_names=chosen,
        overall=measure(None, None, None),
        slices=tuple(slices_out),
        positive_label=None if positive is None else str(positive),
    )
