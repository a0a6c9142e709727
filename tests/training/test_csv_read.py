"""The datasource's one-pass CSV read gives exactly pandas' DataFrame, or leaves it to pandas."""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd
import pytest

from zenml_collab.core.training.csv_read import NA_VALUES, read_csv_fast
from zenml_collab.errors import ConfigError


def pandas_frame(raw: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(raw))


@pytest.mark.parametrize("raw", [
    b"a,b\n1,x\n,y\n3,z\n",                         # an int column with a gap: float64 + NaN
    b"a,b\n 1,x\n2,y\n",                            # spaces around a number
    b"x\n0.1\n1e5\n-inf\n.5\n",
    b"x\n1\nabc\n",                                 # a number among text: text
    b'a,b\n1,"hello, world"\n2,""\n',               # quoted separator, quoted empty = missing
    b"a,b\r\n1,x\r\n2,y\r\n",
    b"a,b\n1,x\n\n2,y\n",                           # a blank line
    b"a\n" + b"1\n" * 70000 + b"x\n",               # text after many numbers: text
], ids=["int-gap", "spaces", "floats", "mixed", "quoted", "crlf", "blank-line", "late-text"])
def test_a_plain_csv_read_fast_equals_pandas_exactly(raw: bytes) -> None:
    fast = read_csv_fast(raw, "data/t.csv")
    assert fast is not None
    pd.testing.assert_frame_equal(fast, pandas_frame(raw), check_exact=True)


def test_the_shipped_data_set_read_fast_equals_pandas_exactly() -> None:
    raw = (resources.files("zenml_collab.data") / "diabetes.csv").read_bytes()
    fast = read_csv_fast(raw, "diabetes.csv")
    assert fast is not None
    pd.testing.assert_frame_equal(fast, pandas_frame(raw), check_exact=True)


@pytest.mark.parametrize("raw", [
    b"a,b\n1, x\n2,y\n",                            # text with spaces pandas keeps
    b"a,d\n1,2020-01-01\n2,2020-02-01\n",           # dates: pandas keeps text
    b"a,b\n1,True\n2,False\n",                      # booleans
    b"a,b\n1,\n2,\n",                               # an all-empty column
    b"a,a\n1,2\n",                                  # duplicate names: pandas renames
    b",b\n1,2\n",                                   # an empty name: "Unnamed: 0"
    b"a\n+1\n2\n",                                  # pandas: int64
    b"a\n99999999999999999999\n1\n",                # beyond int64: pandas keeps text
    b"a\n1.0\n2.0\n",                               # whole numbers written as floats
    b"\xef\xbb\xbfa\n1\n",                          # a byte-order mark
    b"   \n",
], ids=["text-spaces", "dates", "bools", "empty-col", "dup", "unnamed", "plus", "big-int",
        "whole-floats", "bom", "blank"])
def test_a_csv_pandas_may_read_differently_is_left_to_pandas(raw: bytes) -> None:
    assert read_csv_fast(raw, "data/t.csv") is None


def test_every_pandas_missing_value_spelling_is_missing() -> None:
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(NA_VALUES) == set(STR_NA_VALUES)


@pytest.mark.parametrize(("row", "fields"), [("1,2", 2), ("1,2,3,4", 4)])
def test_a_ragged_row_read_fast_is_refused_naming_the_file_and_line(row: str,
                                                                     fields: int) -> None:
    raw = f"a,b,c\n1,2,3\n\"x,\ny\",5,6\n{row}\n7,8,9\n".encode()
    with pytest.raises(ConfigError) as info:
        read_csv_fast(raw, "data/bad.csv")
    assert info.value.message.startswith("data/bad.csv: line 5 has ")
    assert f"has {fields} field(s), the header has 3" in info.value.message
