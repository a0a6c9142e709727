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

_NUMBER_KINDS = frozenset({"integer", "floating", "mixed-integer-float"})
"""What pandas' ``infer_dtype`` calls a column of numbers only (booleans are ``boolean``, numbers
mixed with booleans or text are ``mixed``/``mixed-integer``)."""

_FLAG_TEXT = ("True", "False")


def _is_integral(numbers: np.ndarray) -> bool:
    import numpy as np

    with np.errstate(invalid="ignore"):
        return bool(np.all(numbers == np.round(numbers)))


def infer_type(series: pd.Series) -> FeatureType:
    """Return the feature type of a column, looking at values when the dtype is ``object``.

    The dtype decides when it can; an ``object`` column is classified by pandas' C-level
    ``infer_dtype`` over its values (no per-value Python): all booleans is ``bool``, all numbers
    (not booleans) is ``int`` when every one is integral, else ``float``; anything else is text,
    ``categorical`` up to ``MAX_CATEGORIES`` distinct values, else ``string``.
    """
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
    kind = types.infer_dtype(values, skipna=True) if len(values) else "empty"
    if kind == "boolean":
        return "bool"
    if kind in _NUMBER_KINDS:
        return "int" if _is_integral(values.to_numpy(dtype=float)) else "float"
    # Counted on pandas' own arrays: text stays in Arrow, no Python string per value.
    text = values.array if kind == "string" else values.astype(str).array
    distinct = len(pd.unique(text))
    return "categorical" if distinct <= MAX_CATEGORIES else "string"


@dataclass(frozen=True)
class ReadColumn:
    """A column read as one feature type.

    ``values`` holds the readable, non-missing values (floats for numeric types, a pandas string
    array for categorical/string, the strings "True"/"False" for bool, ``datetime64`` for
    datetime); ``missing`` counts nulls; ``invalid`` counts non-null values that cannot be read
    as the type, ``invalid_examples`` shows a few.
    """

    values: Any
    missing: int
    invalid: int
    invalid_examples: tuple[str, ...]


def _examples(values: pd.Series, limit: int = 3) -> tuple[str, ...]:
    return tuple(repr(v) for v in values.drop_duplicates().head(limit).tolist())


def _text_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``str()`` of every value (a numpy unicode array) and which values are ``str`` already.

    Both are C loops: ``astype(str)`` calls ``str`` on each object, and comparing the objects
    with their text form is true exactly for strings (``1 != "1"``, ``True != "True"``).
    """
    import numpy as np

    text = values.astype(str)
    is_text = np.equal(values, text.astype(object)).astype(bool)
    return text, is_text


def _numbers(present: pd.Series) -> np.ndarray:
    """The present values as floats, NaN where a value is not a number (booleans included)."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    dtype = present.dtype
    if types.is_bool_dtype(dtype):
        return np.full(len(present), np.nan)
    if types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        return present.to_numpy(dtype=float, na_value=np.nan)
    values = present.to_numpy(dtype=object)
    kind = types.infer_dtype(values, skipna=True) if len(values) else "empty"
    if kind == "boolean":
        return np.full(len(values), np.nan)
    numbers = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(dtype=float)
    if kind not in _NUMBER_KINDS and kind not in ("string", "empty"):
        # Mixed objects: to_numeric reads True as 1, but a flag is not a number.
        text, is_text = _text_of(values)
        numbers = np.where(~is_text & np.isin(text, _FLAG_TEXT), np.nan, numbers)
    return numbers


def _flags(present: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(readable, value) of every present value read as a boolean: booleans, 0/1 numbers and the
    text true/false in any case and with surrounding blanks."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    dtype = present.dtype
    if types.is_bool_dtype(dtype):
        flags = present.to_numpy(dtype=bool)
        return np.ones(len(flags), dtype=bool), flags
    if types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        numbers = present.to_numpy(dtype=float)
        return (numbers == 0) | (numbers == 1), numbers == 1
    values = present.to_numpy(dtype=object)
    text, is_text = _text_of(values)
    lowered = np.char.lower(np.char.strip(text))
    is_true_text = is_text & (lowered == "true")
    readable = is_text & (is_true_text | (lowered == "false"))
    is_flag = ~is_text & np.isin(text, _FLAG_TEXT)
    numbers = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(dtype=float)
    is_bit = ~is_text & ~is_flag & ((numbers == 0) | (numbers == 1))
    readable |= is_flag | is_bit
    truth = is_true_text | (is_flag & (text == "True")) | (is_bit & (numbers == 1))
    return readable, truth


def read_column(series: pd.Series, feature_type: str) -> ReadColumn:
    """Read ``series`` as ``feature_type``, separating missing and unreadable values.

    Numeric types accept numbers and numeric text ("12.5"); ``int`` additionally rejects values
    with a fractional part but accepts integral floats, since pandas turns an int column with a
    missing value into float64. Non-finite numbers (inf) count as invalid. ``bool`` accepts
    booleans, 0/1 and the text true/false (any case). Whole-column operations only: numeric
    columns are never copied to ``object``.
    """
    import numpy as np
    import pandas as pd

    notna = series.notna().to_numpy()
    present = series[notna] if not notna.all() else series
    missing = int(len(series) - len(present))
    if feature_type in NUMERIC_TYPES:
        numbers = _numbers(present)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(numbers)
            if feature_type == "int":
                ok &= np.equal(np.round(numbers), numbers)
        if ok.all():
            return ReadColumn(numbers, missing, 0, ())
        return ReadColumn(numbers[ok], missing, int((~ok).sum()), _examples(present[~ok]))
    if feature_type == "bool":
        ok, truth = _flags(present)
        values = np.where(truth[ok], "True", "False").astype(object)
        return ReadColumn(values, missing, int((~ok).sum()), _examples(present[~ok]))
    if feature_type == "datetime":
        times = pd.to_datetime(present, errors="coerce")
        ok = times.notna().to_numpy()
        return ReadColumn(times[ok].to_numpy(), missing, int((~ok).sum()), _examples(present[~ok]))
    # categorical / string: every value has a text form, kept in pandas' string array (Arrow
    # memory: a Python object per value would cost ~60 bytes each).
    return ReadColumn(present.astype(str).array, missing, 0, ())


def clean_float(value: Any) -> float | None:
    """Return ``value`` as a plain float, or None for None/NaN (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def to_float_tuple(values: Sequence[Any] | np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
