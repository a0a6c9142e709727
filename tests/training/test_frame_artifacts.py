"""DataFrames between steps: an Arrow IPC file, mapped on load, writable, and still untrusted."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from zenml_collab.core.artifacts.base import load_artifact, save_artifact
from zenml_collab.core.artifacts.frames import release_pages
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.errors import MaterializerError
from zenml_collab.testing.hostile import store_raw_artifact


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def round_trip(store: LocalArtifactStore, value: object) -> object:
    return load_artifact(store, save_artifact(store, value))


FRAMES = {
    "index-and-nulls": pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, np.nan, 2.0]},
                                    index=[10, 20, 30]),
    "categorical-and-times": pd.DataFrame({
        "k": pd.Categorical(["a", "b", "a"]),
        "zoned": pd.date_range("2020-01-01", periods=3, tz="UTC"),
        "naive": pd.date_range("2020-01-01", periods=3)}),
    "nullable": pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "flag": [True, False, True],
                              "maybe": pd.array([True, None, False], dtype="boolean")}),
    "multiindex-columns": pd.DataFrame(
        np.arange(6.0).reshape(3, 2), columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
    "integer-column-names": pd.DataFrame(np.arange(6).reshape(3, 2)),
    "no-rows": pd.DataFrame({"a": pd.Series([], dtype=float)}),
    "named-index": pd.DataFrame({"a": [1.0, 2.0]}, index=pd.Index(["r1", "r2"], name="row")),
}


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_frames_round_trip_through_the_arrow_file(store, frame):
    ref = save_artifact(store, frame)
    assert ref.materializer == "pandas" and ref.files == ("data.arrow",)
    pd.testing.assert_frame_equal(load_artifact(store, ref), frame)


def test_a_series_round_trips(store):
    series = pd.Series([1.0, 2.0], name="s")
    pd.testing.assert_series_equal(round_trip(store, series), series)


@pytest.mark.parametrize("frame", [FRAMES["index-and-nulls"], FRAMES["categorical-and-times"],
                                   FRAMES["multiindex-columns"]], ids=["numbers", "categorical",
                                                                      "multiindex"])
def test_a_loaded_frame_can_be_written_to_without_changing_the_stored_file(store, frame):
    ref = save_artifact(store, frame)
    stored = (Path(store.location(ref)) / "data.arrow").read_bytes()
    loaded = load_artifact(store, ref)
    for position in range(loaded.shape[1]):
        loaded.iloc[0, position] = loaded.iloc[-1, position]
    assert (Path(store.location(ref)) / "data.arrow").read_bytes() == stored
    pd.testing.assert_frame_equal(load_artifact(store, ref), frame)


def test_numeric_columns_are_read_from_the_mapped_file_not_copied(store):
    frame = pd.DataFrame({"x": np.arange(100_000, dtype=float), "y": np.ones(100_000)})
    loaded = load_artifact(store, save_artifact(store, frame))
    base = loaded["x"].to_numpy()
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)


def test_equal_frames_make_the_same_artifact_however_their_columns_were_built(store):
    text = pa.chunked_array([["a", "b"], ["c"], ["d", "e"]])
    chunked = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0],
                            "t": pd.array(text, dtype=pd.ArrowDtype(pa.string())).astype("str")})
    whole = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "t": pd.array(["a", "b", "c", "d", "e"], dtype="str")})
    assert save_artifact(store, chunked).hash == save_artifact(store, whole).hash


def test_frames_stored_as_parquet_before_still_load(store):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=True)
    ref = store_raw_artifact(store, "pandas", {"data.parquet": buffer.getvalue()})
    pd.testing.assert_frame_equal(load_artifact(store, ref), frame)
    series = store_raw_artifact(store, "pandas", {"data.parquet": buffer.getvalue(),
                                                  "series": b"1"})
    pd.testing.assert_series_equal(load_artifact(store, series), frame["a"])


def _arrow_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame)
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_a_crafted_string_offset_is_refused_before_pandas_reads_through_it(store):
    data = bytearray(_arrow_bytes(pd.DataFrame({"t": pd.array(["ab", "cd"], dtype="str")})))
    # The offsets of the two strings (0, 2, 4 as int64): the middle one far past the data.
    # Arrow's cheap checks look at the last offset only; the first string would be read from
    # a terabyte away.
    offsets = np.array([0, 2, 4], dtype=np.int64).tobytes()
    at = bytes(data).index(offsets)
    data[at + 8:at + 16] = np.int64(1 << 40).tobytes()
    ref = store_raw_artifact(store, "pandas", {"data.arrow": bytes(data)})
    with pytest.raises(MaterializerError) as info:
        load_artifact(store, ref)
    assert "could not be read" in info.value.message


def test_a_file_that_is_not_arrow_is_refused(store):
    ref = store_raw_artifact(store, "pandas", {"data.arrow": b"PAR1 not arrow at all"})
    with pytest.raises(MaterializerError):
        load_artifact(store, ref)


def _resident(values: np.ndarray) -> int:
    """How many pages of ``values`` this process has mapped (from /proc/self/pagemap)."""
    import mmap

    page = mmap.PAGESIZE
    start = values.__array_interface__["data"][0] // page
    count = -(-values.nbytes // page)
    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        pagemap.seek(start * 8)
        entries = np.frombuffer(pagemap.read(count * 8), dtype=np.uint64)
    return int(np.count_nonzero(entries >> np.uint64(63)))


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux /proc only")
def test_a_column_read_once_hands_its_pages_back_and_reads_the_same_after(store):
    frame = pd.DataFrame({"x": np.arange(1_000_000, dtype=float)})
    loaded = load_artifact(store, save_artifact(store, frame))
    column = loaded["x"].to_numpy()
    assert column.sum() == frame["x"].sum()
    assert _resident(column) > 200
    release_pages(column)
    assert _resident(column) < 3  # at most the pages shared with the file's other parts
    np.testing.assert_array_equal(column, frame["x"].to_numpy())


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="Linux /proc only")
def test_a_column_the_step_wrote_to_keeps_its_pages_and_its_changes(store):
    frame = pd.DataFrame({"x": np.arange(1_000_000, dtype=float)})
    loaded = load_artifact(store, save_artifact(store, frame))
    loaded.loc[500_000, "x"] = -1.0
    column = loaded["x"].to_numpy()
    release_pages(column)
    assert column[500_000] == -1.0 and loaded["x"].sum() == frame["x"].sum() - 500_001


def test_release_pages_leaves_arrays_that_are_not_mapped_alone():
    values = np.arange(10.0)
    release_pages(values)
    release_pages(values[::2])
    assert values.sum() == 45.0
