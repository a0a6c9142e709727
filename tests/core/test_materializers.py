"""Each materializer round-trips its type; content addressing is by bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.artifacts.base import load_artifact, save_artifact
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.errors import MaterializerError


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.mark.parametrize(("value", "materializer"), [
    ({"a": [1, 2.5, None, "x"]}, "json"),
    (b"\x00\x01binary", "bytes"),
    (np.arange(12, dtype=np.float32).reshape(3, 4), "numpy"),
])
def test_values_round_trip(store, value, materializer):
    ref = save_artifact(store, value)
    assert ref.materializer == materializer
    loaded = load_artifact(store, ref)
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(loaded, value)
        assert loaded.dtype == value.dtype
    else:
        assert loaded == value


def test_dataframes_round_trip_with_dtypes_and_index(store):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, np.nan, 2.0]},
                         index=[10, 20, 30])
    ref = save_artifact(store, frame)
    assert ref.materializer == "pandas"
    pd.testing.assert_frame_equal(load_artifact(store, ref), frame)


def test_series_round_trip(store):
    series = pd.Series([1.0, 2.0], name="s")
    pd.testing.assert_series_equal(load_artifact(store, save_artifact(store, series)), series)


def test_sklearn_estimators_round_trip(store):
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 0, 1, 1])
    ref = save_artifact(store, model)
    assert ref.materializer == "sklearn"
    np.testing.assert_array_equal(load_artifact(store, ref).predict(x), model.predict(x))


def test_arbitrary_objects_are_not_pickled_without_opt_in(store):
    with pytest.raises(MaterializerError, match="allow_pickle=True"):
        save_artifact(store, object())


def test_object_arrays_are_refused(store):
    with pytest.raises(MaterializerError, match="dtype=object"):
        save_artifact(store, np.array([object()], dtype=object))


def test_equal_content_gives_equal_address_and_is_stored_once(store):
    a = save_artifact(store, np.ones(1000))
    b = save_artifact(store, np.ones(1000))
    c = save_artifact(store, np.zeros(1000))
    assert a.hash == b.hash != c.hash
    assert len(list(Path(store.uri).glob("??/*"))) == 2


def test_a_loaded_array_can_be_changed_without_changing_the_stored_artifact(store):
    ref = save_artifact(store, np.arange(10))
    loaded = load_artifact(store, ref)
    loaded += 100  # a step mutating its input works on a private copy
    np.testing.assert_array_equal(load_artifact(store, ref), np.arange(10))


def test_small_values_already_stored_make_no_staging_writes(store, tmp_path):
    first = save_artifact(store, {"a": 1})
    staging = Path(store.uri) / ".tmp"
    before = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    assert save_artifact(store, {"a": 1}) == first
    after = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    assert before == after == []


def test_memory_mapped_inputs_returned_sliced_or_reshaped_are_stored(store):
    ref = save_artifact(store, np.arange(12.0))
    loaded = load_artifact(store, ref)  # a copy-on-write np.memmap
    for derived in (loaded, loaded[:3], loaded.reshape(3, 4)):
        out = save_artifact(store, derived)
        assert out.materializer == "numpy"
        np.testing.assert_array_equal(load_artifact(store, out), np.asarray(derived))


def test_numpy_scalars_are_stored_as_json_numbers(store):
    ref = save_artifact(store, {"total": np.arange(4).sum(), "best": np.float32(0.5)})
    assert ref.materializer == "json"
    assert load_artifact(store, ref) == {"total": 6, "best": 0.5}
    assert load_artifact(store, save_artifact(store, np.int64(7))) == 7
