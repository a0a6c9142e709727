"""The values anomaly detection produces: :class:`Anomaly`, :class:`DriftScore` and the
:class:`Anomalies` of one split, with their stored-document form, and the default thresholds.

Kept apart from the checks in :mod:`.anomalies` (which re-exports every name here) so that
readers of stored data views need no pandas or numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from zenml_collab.core.analysis._columns import clean_float

NUMERIC_DRIFT_THRESHOLD = 0.3
"""Default Jensen-Shannon distance (base 2, in [0, 1]) above which a numeric feature drifted."""

CATEGORICAL_DRIFT_THRESHOLD = 0.2
"""Default L-infinity distance (largest change of one category's frequency) for categoricals."""

RANGE_TOLERANCE = 0.25
"""Numeric values may lie this fraction of the training range beyond its min or max."""

Severity = Literal["error", "warning"]
AnomalyKind = Literal[
    "missing_column",
    "unexpected_column",
    "type_mismatch",
    "out_of_domain",
    "out_of_range",
    "unexpected_missing",
    "drift",
]
Number = int | float | str | None


@dataclass(frozen=True)
class Anomaly:
    """One finding: ``feature`` broke the expectation ``kind``; ``details`` holds the numbers.

    ``error`` means the data breaks the schema (a model would see inputs it was never trained
    on); ``warning`` means the data is valid but different (drift, an extra column).
    """

    feature: str
    kind: AnomalyKind
    severity: Severity
    description: str
    details: Mapping[str, Number] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # A read-only view keeps the frozen value truly immutable.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "severity": self.severity,
            "description": self.description,
            "details": {
                k: clean_float(v) if isinstance(v, float) else v for k, v in self.details.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Anomaly:
        return cls(
            data["feature"], data["kind"], data["severity"], data["description"], data["details"]
        )


@dataclass(frozen=True)
class DriftScore:
    """Distance between the baseline and the checked split for one feature."""

    feature: str
    metric: Literal["jensen_shannon", "l_infinity"]
    value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.value > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftScore:
        return cls(data["feature"], data["metric"], float(data["value"]), float(data["threshold"]))


@dataclass(frozen=True)
class Anomalies:
    """The result of :func:`detect_anomalies`: findings plus every feature's drift score."""

    split: str
    baseline: str
    anomalies: tuple[Anomaly, ...]
    drift: tuple[DriftScore, ...]

    @property
    def ok(self) -> bool:
        """True when nothing at all was found."""
        return not self.anomalies

    @property
    def errors(self) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.severity == "error")

    @property
    def warnings(self) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.severity == "warning")

    def of_kind(self, kind: str) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.kind == kind)

    def __iter__(self) -> Iterator[Anomaly]:
        return iter(self.anomalies)

    def __len__(self) -> int:
        return len(self.anomalies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "baseline": self.baseline,
            "anomalies": [a.to_dict() for a in self.anomalies],
            "drift": [d.to_dict() for d in self.drift],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Anomalies:
        return cls(
            split=data["split"],
            baseline=data["baseline"],
            anomalies=tuple(Anomaly.from_dict(a) for a in data["anomalies"]),
            drift=tuple(DriftScore.from_dict(d) for d in data["drift"]),
        )
