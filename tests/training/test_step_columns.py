"""The standard steps work a column at a time and give what the whole-frame code gave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.training.csv_read import HEAD_BYTES
from zenml_collab.core.training.steps import (
    SPLIT_COLUMN,
    CSVDatasource,
    RandomSplit,
    StandardPreprocesser,
    _rows_of,
)
from zenml_collab.errors import ConfigError

ROWS = np.array([True, False, True, True, False, True])
SPLITS = pd.Categorical(["train", "eval", "train", "train", "eval", "train"],
                        categories=["train", "eval"])


def whole_frame_rows(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return frame.drop(columns=[SPLIT_COLUMN]).to_numpy()[rows]


@pytest.mark.parametrize("columns", [
    {"a": np.arange(6.0), "b": np.linspace(0, 1, 6)},
    {"a": np.arange(6), "b": np.linspace(0, 1, 6)},              # int beside float: float
    {"label": np.array([0, 1, 1, 0, 1, 0])},                      # int only: int
    {"a": np.arange(6.0), "flag": [True, False] * 3},             # bool beside float: object
    {"a": pd.array([1, None, 3, 4, 5, 6], dtype="Int64")},        # nullable: pandas decides
    {"t": ["x", "y", "z", "x", "y", "z"], "a": np.arange(6.0)},   # text
], ids=["floats", "int-and-float", "ints", "bool-and-float", "nullable", "text"])
def test_rows_of_gives_what_the_whole_frame_conversion_gave(columns):
    frame = pd.DataFrame({**columns, SPLIT_COLUMN: SPLITS})
    got = _rows_of(frame, ROWS)
    want = whole_frame_rows(frame, ROWS)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(want))


def preprocess_as_before(data: pd.DataFrame, features: list[str], labels: list[str]):
    """The preprocesser as it was: whole-series arithmetic and column assignment."""
    in_train = (data[SPLIT_COLUMN] == "train").to_numpy(dtype=bool)
    out = pd.DataFrame(index=data.index)
    for column in features:
        series = data[column]
        fitted = pd.Series(series.array[in_train], name=column, copy=False)
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            mean, std = fitted.mean(), fitted.std(ddof=0)
            out[column] = (series.fillna(mean).astype(float) - mean) / (std if std else 1.0)
        else:
            text = series.astype(str)
            for value in sorted(fitted.dropna().astype(str).unique()):
                out[f"{column}={value}"] = (text == value).astype(float)
    out[SPLIT_COLUMN] = data[SPLIT_COLUMN]
    label_frame = data[labels].copy()
    label_frame[SPLIT_COLUMN] = data[SPLIT_COLUMN]
    return out, label_frame


def test_the_preprocesser_computes_exactly_what_it_did_column_by_column():
    rng = np.random.default_rng(3)
    n = 2_000
    data = pd.DataFrame({
        "glucose": rng.normal(120, 30, n).round(1),
        "age": rng.integers(20, 80, n),
        "constant": np.full(n, 2.5),                              # std 0: divided by 1
        "bmi": np.where(rng.random(n) < 0.1, np.nan, rng.normal(30, 5, n)),
        "clinic": pd.array(np.where(rng.random(n) < 0.05, None,
                                    rng.choice(np.array(["north", "south", "harbor"]), n)),
                           dtype="str"),
        "label": rng.integers(0, 2, n),
        SPLIT_COLUMN: pd.Categorical.from_codes((rng.random(n) < 0.3).astype(np.int8),
                                                categories=["train", "eval"]),
    })
    features = ["glucose", "age", "constant", "bmi", "clinic"]
    out, labels = StandardPreprocesser(features=features, labels=["label"]).run(data)
    want_out, want_labels = preprocess_as_before(data, features, ["label"])
    pd.testing.assert_frame_equal(out, want_out, check_exact=True, check_column_type=False)
    pd.testing.assert_frame_equal(labels, want_labels, check_exact=True)


def test_the_split_column_is_categorical_with_the_split_names_as_categories():
    data = pd.DataFrame({"x": np.arange(1_000.0)})
    out = RandomSplit(split_map={"train": 0.7, "eval": 0.2, "test": 0.1}, seed=1).run(data)
    split = out["output"][SPLIT_COLUMN]
    assert list(split.cat.categories) == ["train", "eval", "test"]
    assert split.value_counts().to_dict() == {"train": 700, "eval": 200, "test": 100}
    assert out["output"]["x"].equals(data["x"])
    assert [s["name"] for s in out["statistics"]["statistics"]["splits"]] == \
        list(pd.unique(split.astype(str)))


@pytest.fixture
def big_csv(tmp_repo):
    rows = "".join(f"{i},{i * 0.5},{'north' if i % 3 else 'south'}\n" for i in range(20_000))
    path = tmp_repo.root / "data" / "big.csv"
    path.parent.mkdir()
    path.write_text("id,score,clinic\n" + rows)
    assert path.stat().st_size > HEAD_BYTES
    return path


def test_a_large_local_csv_is_parsed_from_the_file_as_pandas_reads_it(big_csv):
    frame = CSVDatasource(name="big", path="data/big.csv").run()
    pd.testing.assert_frame_equal(frame, pd.read_csv(big_csv))


def test_a_ragged_row_deep_in_a_large_file_names_its_line(big_csv):
    lines = big_csv.read_text().splitlines(keepends=True)
    lines[15_000] = "1,2,3,4\n"
    big_csv.write_text("".join(lines))
    with pytest.raises(ConfigError) as info:
        CSVDatasource(name="big", path="data/big.csv").run()
    assert info.value.message.startswith("data/big.csv: line 15001 has 4 field(s)")


def test_a_large_csv_with_a_byte_order_mark_is_left_to_pandas(big_csv):
    big_csv.write_bytes(b"\xef\xbb\xbf" + big_csv.read_bytes())
    frame = CSVDatasource(name="big", path="data/big.csv").run()
    assert list(frame.columns) == ["id", "score", "clinic"] and len(frame) == 20_000
