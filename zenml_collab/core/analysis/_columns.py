"""Column-level helpers shared by schema inference, statistics and anomaly checks.

One place decides what type a column holds and how its values are read as that type, so the
schema, the statistics and the anomaly checks can never disagree about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FeatureType = Literal["int", "float", "bool", "categorical", "string", "datetime"]
FEATURE_TYPES: tuple[FeatureType, ...] = (
    "int",
    "float",
    "bool",
    "categorical",
    "string",
    "datetime",
)
NUMERIC_TYPES: frozenset[str] = frozenset({"int", "float"})

MAX_CATEGORIES = 50
"""A text column with at most this many distinct values is ``categorical`` (and gets a value
domain); above it, it is ``string`` (free text, no domain), as TFDV does for large vocabularies."""

_BOOL_TEXT = {"true": True, "false": False}


def _is_number(value: Any) -> bool:
    import numpy as np

    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_)


def infer_type(series: pd.Series) -> FeatureType:
    """Return the feature type of a column, looking at values when the dtype is ``object``."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int"
    if types.is_float_dtype(dtype):
        return "float"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    values = series.dropna()
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if len(values) and all(_is_bool(v) for v in values):
        return "bool"
    if len(values) and all(_is_number(v) for v in values):
        floats = values.astype(float)
        return "int" if bool((floats == floats.round()).all()) else "float"
    return "categorical" if values.astype(str).nunique() <= MAX_CATEGORIES else "string"


@dataclass(frozen=True)
class ReadColumn:
    """A column read as one feature type.

    ``values`` holds the readable, non-missing values (floats for numeric types, strings for
    categorical/string/bool, ``datetime64`` for datetime); ``missing`` counts nulls; ``invalid``
    counts non-null values that cannot be read as the type, ``invalid_examples`` shows a few.
    """

    values: Any
    missing: int
    invalid: int
    invalid_examples: tuple[str, ...]


def _examples(values: pd.Series, limit: int = 3) -> tuple[str, ...]:
    return tuple(repr(v) for v in values.drop_duplicates().head(limit).tolist())


def read_column(series: pd.Series, feature_type: str) -> ReadColumn:
    """Read ``series`` as ``feature_type``, separating missing and unreadable values.

    Numeric types accept numbers and numeric text ("12.5"); ``int`` additionally rejects values
    with a fractional part but accepts integral floats, since pandas turns an int column with a
    missing value into float64. Non-finite numbers (inf) count as invalid. ``bool`` accepts
    booleans, 0/1 and the text true/false (any case).
    """
    import numpy as np
    import pandas as pd

    present = series[series.notna()]
    missing = int(len(series) - len(present))
    if feature_type in NUMERIC_TYPES:
        if pd.api.types.is_bool_dtype(present.dtype):
            numbers = pd.Series(np.nan, index=present.index)
        else:
            as_object = present.astype(object)
            is_flag = as_object.map(_is_bool).astype(bool)
            numbers = pd.to_numeric(as_object.where(~is_flag), errors="coerce").astype(float)
        ok = np.isfinite(numbers.to_numpy(dtype=float))
        if feature_type == "int":
            ok &= np.equal(np.round(numbers.to_numpy(dtype=float)), numbers.to_numpy(dtype=float))
        return ReadColumn(
            numbers[ok].to_numpy(dtype=float), missing, int((~ok).sum()), _examples(present[~ok])
        )
    if feature_type == "bool":
        flags = present.astype(object).map(_read_bool)
        ok = flags.notna().to_numpy()
        values = flags[ok].map(str).to_numpy(dtype=object)
        return ReadColumn(values, missing, int((~ok).sum()), _examples(present[~ok]))
    if feature_type == "datetime":
        times = pd.to_datetime(present, errors="coerce")
        ok = times.notna().to_numpy()
        return ReadColumn(times[ok].to_numpy(), missing, int((~ok).sum()), _examples(present[~ok]))
    # categorical / string: every value has a text form.
    return ReadColumn(present.astype(str).to_numpy(dtype=object), missing, 0, ())


def _read_bool(value: Any) -> bool | None:
    if _is_bool(value):
        return bool(value)
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOL_TEXT.get(value.strip().lower())
    return None


def clean_float(value: Any) -> float | None:
    """Return ``value`` as a plain float, or None for None/NaN (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def to_float_tuple(values: Sequence[Any] | np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
