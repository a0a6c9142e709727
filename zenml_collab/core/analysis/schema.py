"""Infer a schema (types, nullability, value domains) from a training frame."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zenml_collab.core.analysis._columns import (
    MAX_CATEGORIES,
    NUMERIC_TYPES,
    FeatureType,
    ReadColumn,
    infer_type,
    read_column,
)
from zenml_collab.core.analysis.errors import AnalysisError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_CATEGORIES",
    "FeatureSchema",
    "Schema",
    "feature_schema",
    "infer_feature",
    "infer_schema",
]


@dataclass(frozen=True)
class FeatureSchema:
    """What one column is expected to hold.

    Attributes:
        name: column name.
        type: ``int``, ``float``, ``bool``, ``categorical`` (text with at most
            ``MAX_CATEGORIES`` distinct values), ``string`` (free text) or ``datetime``.
        nullable: whether the column had missing values in the data the schema came from.
        presence: fraction of rows with a value (1.0 when ``nullable`` is False).
        categories: sorted value domain of a ``categorical`` feature, else None.
        value_range: ``(min, max)`` of an ``int``/``float`` feature, else None.
    """

    name: str
    type: FeatureType
    nullable: bool
    presence: float
    categories: tuple[str, ...] | None = None
    value_range: tuple[float, float] | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["categories"] = list(self.categories) if self.categories is not None else None
        out["value_range"] = list(self.value_range) if self.value_range is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSchema:
        categories = data.get("categories")
        value_range = data.get("value_range")
        return cls(
            name=str(data["name"]),
            type=data["type"],
            nullable=bool(data["nullable"]),
            presence=float(data["presence"]),
            categories=tuple(categories) if categories is not None else None,
            value_range=(float(value_range[0]), float(value_range[1]))
            if value_range is not None
            else None,
        )


@dataclass(frozen=True)
class Schema:
    """The expected shape of a data set: one :class:`FeatureSchema` per column, in column order."""

    features: tuple[FeatureSchema, ...]
    num_rows: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    def __iter__(self) -> Iterator[FeatureSchema]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> FeatureSchema:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise AnalysisError(
            f"the schema has no feature {name!r}",
            hint=f"features: {', '.join(self.names)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {"num_rows": self.num_rows, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        return cls(
            features=tuple(FeatureSchema.from_dict(f) for f in data["features"]),
            num_rows=int(data["num_rows"]),
        )


def infer_feature(series: pd.Series, name: str | None = None) -> FeatureSchema:
    """Infer the :class:`FeatureSchema` of one column."""
    feature_type = infer_type(series)
    return feature_schema(
        str(series.name if name is None else name),
        feature_type,
        read_column(series, feature_type),
        len(series),
    )


def feature_schema(
    name: str, feature_type: FeatureType, column: ReadColumn, rows: int
) -> FeatureSchema:
    """The :class:`FeatureSchema` of a column of ``rows`` rows already read as ``feature_type``."""
    import pandas as pd

    presence = 1.0 if rows == 0 else (rows - column.missing) / rows
    categories = None
    value_range = None
    if feature_type == "categorical":
        categories = tuple(sorted(str(v) for v in pd.unique(column.values)))
    elif feature_type in NUMERIC_TYPES and len(column.values):
        value_range = (float(column.values.min()), float(column.values.max()))
    return FeatureSchema(
        name=name,
        type=feature_type,
        nullable=column.missing > 0,
        presence=presence,
        categories=categories,
        value_range=value_range,
    )


def infer_schema(frame: pd.DataFrame) -> Schema:
    """Infer a :class:`Schema` from a (training) DataFrame.

    Types come from the dtype, or from the values of an ``object`` column; a text column with at
    most ``MAX_CATEGORIES`` (50) distinct values is ``categorical`` and its domain is the set of
    values seen. Numeric features get their observed ``(min, max)`` as range; the anomaly check
    widens it by a tolerance before flagging values.

    Example::

        >>> schema = infer_schema(pd.DataFrame({"age": [21, 35], "clinic": ["north", "south"]}))
        >>> schema["clinic"].categories
        ('north', 'south')
    """
    return Schema(
        features=tuple(infer_feature(frame[column], str(column)) for column in frame.columns),
        num_rows=len(frame),
    )
