"""The shared stores are untrusted input (DESIGN §10): a hostile or broken record or artifact
is refused before any byte touches the disk and before any deserialiser runs, and bytes that do
not match their recorded hash are never served or built upon."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import collab_test_steps as steps
import numpy as np
import pytest
import sqlalchemy as sa

from zenml_collab import Repository
from zenml_collab.core.artifacts.base import ArtifactRef, load_artifact, save_artifact
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.errors import (
    ArtifactCorruptError,
    MaterializerError,
    UntrustedArtifactError,
)
from zenml_collab.testing.hostile import store_raw_artifact

GOOD_HASH = "0" * 32


class _Canary:
    """Unpickling this creates the canary file: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _ref(**overrides: object) -> dict:
    return {"hash": GOOD_HASH, "materializer": "json", "files": ["value.json"], "size": 2,
            **overrides}


@pytest.mark.parametrize(("record", "complaint"), [
    (_ref(files=["../../../../tmp/x/.bashrc"]), "never writes"),
    (_ref(files=["/etc/passwd"]), "never writes"),
    (_ref(files=["sub/value.json"]), "never writes"),
    (_ref(files=["x" * 5000]), "never writes"),
    (_ref(files=["model.skops"]), "never writes"),
    (_ref(materializer="evil.module"), "unknown materializer"),
    (_ref(hash="../../etc"), "not 32 hex digits"),
    (_ref(hash="A" * 32), "not 32 hex digits"),
    (_ref(files="value.json"), "no valid list of files"),
    (_ref(files=[]), "no valid list of files"),
    (_ref(files=["value.json", "value.json"]), "twice"),
    (_ref(size=-1), "invalid size"),
    (["not", "an", "object"], "expected an object"),
])
def test_malformed_artifact_records_are_refused_naming_who_recorded_them(record, complaint):
    with pytest.raises(UntrustedArtifactError) as info:
        ArtifactRef.from_json(record, origin="step 'train' of run 1234abcd (recorded by mallory)")
    assert complaint in info.value.message
    assert "recorded by mallory" in info.value.message
    assert info.value.hint


_store_raw = store_raw_artifact  # what a hostile teammate can do


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.mark.parametrize(("materializer", "file"), [
    ("json", "value.json"), ("numpy", "array.npy"), ("bytes", "data.bin"),
    ("pandas", "data.parquet"), ("sklearn", "model.skops"),
])
def test_a_pickle_under_another_label_never_runs(store, tmp_path, materializer, file):
    canary = tmp_path / "canary"
    ref = _store_raw(store, materializer, {file: pickle.dumps(_Canary(canary))})
    try:
        value = load_artifact(store, ref)
    except MaterializerError as exc:
        assert exc.hint
    else:  # bytes are bytes: returned as such, never unpickled
        assert materializer == "bytes" and isinstance(value, bytes)
    assert not canary.exists()


def test_a_legacy_joblib_model_needs_the_readers_opt_in(store, tmp_path):
    canary = tmp_path / "canary"
    ref = _store_raw(store, "sklearn", {"model.joblib": pickle.dumps(_Canary(canary))})
    with pytest.raises(MaterializerError) as info:
        load_artifact(store, ref)
    assert "joblib" in info.value.message and "allow_pickle=True" in info.value.hint
    assert not canary.exists()
    load_artifact(store, ref, allow_pickle=True)  # the opt-in is honoured: it is a pickle
    assert canary.exists()


def test_a_skops_model_holding_a_foreign_type_is_refused(store, tmp_path):
    import skops.io as sio

    canary = tmp_path / "canary"
    payload = sio.dumps({"estimator": _Canary(canary)})
    ref = _store_raw(store, "sklearn", {"model.skops": payload})
    with pytest.raises(MaterializerError) as info:
        load_artifact(store, ref)
    assert "_Canary" in info.value.message
    assert not canary.exists()


def test_scikit_learn_models_are_stored_with_skops_and_load_without_opt_in(store):
    from sklearn.ensemble import RandomForestClassifier

    x = np.random.default_rng(0).random((40, 3))
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, x[:, 0] > 0.5)
    ref = save_artifact(store, model)
    assert ref.files == ("model.skops",)
    np.testing.assert_array_equal(load_artifact(store, ref).predict(x), model.predict(x))


def _engine(repo: Repository) -> sa.Engine:
    return repo.metadata.engine


def _poison_outputs(repo: Repository, table: str, files: list[str]) -> None:
    with _engine(repo).begin() as conn:
        rows = conn.execute(sa.text(f"SELECT outputs_json FROM {table}")).all()
        for (outputs,) in rows:
            if not outputs:
                continue
            data = json.loads(outputs)
            for ref in data.values():
                ref["files"] = files
            conn.execute(sa.text(f"UPDATE {table} SET outputs_json = :new WHERE outputs_json = :old"),
                         {"new": json.dumps(data), "old": outputs})


def test_a_hostile_cache_entry_is_refused_and_writes_nothing(tmp_repo, tmp_path):
    steps.diamond().run()
    repo = Repository()
    target = tmp_path / "outside" / "bashrc"
    _poison_outputs(repo, "cache_entries", [f"../../../../../{target}"])
    result = tmp_repo.python("import collab_test_steps as s; s.diamond().run()")
    assert result.returncode != 0
    assert "refused an artifact recorded by the cache entry of step 'source'" in result.stderr
    assert "Traceback" not in result.stderr or "UntrustedArtifactError" in result.stderr
    assert not target.exists() and not target.parent.exists()


def test_run_load_refuses_a_hostile_step_record(tmp_repo, tmp_path):
    run = steps.diamond().run()
    repo = Repository()
    _poison_outputs(repo, "step_runs", ["/etc/passwd"])
    with pytest.raises(UntrustedArtifactError) as info:
        repo.get_run(run.id).load("combine")
    assert "recorded by" in info.value.message


def _stored_file(repo: Repository, run, step: str, name: str) -> Path:
    return Path(repo.artifacts.location(run[step].outputs["output"])) / name


def _flip(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.seek(128)
        fh.write(b"\0" * 4096)


@pytest.mark.parametrize("damage", ["zero 4 KiB", "truncate"])
def test_a_corrupt_stored_array_is_never_loaded_and_the_next_run_repairs_it(
        tmp_repo, executions, damage):
    run = steps.array_chain().run()
    repo = Repository()
    path = _stored_file(repo, run, "ramp", "array.npy")
    if damage == "truncate":
        os.truncate(path, path.stat().st_size // 2)
    else:
        _flip(path)
    with pytest.raises(ArtifactCorruptError):
        repo.get_run(run.id).load("ramp")
    executions.reset()
    again = steps.array_chain().copy(new_name="arrays again").run()
    assert again["ramp"].status == "executed"
    assert again["ramp"].reason == "artifact corrupt"
    assert again["total"].status == "cached"  # same bytes again, so the same input hash
    assert executions.names() == ["ramp"]
    expected = np.arange(4096, dtype=np.float64) + 1.0
    np.testing.assert_array_equal(again.load("ramp"), expected)
    assert again.load("total") == float(expected.sum())


def test_an_edited_json_artifact_is_never_served_or_built_upon(tmp_repo, executions):
    run = steps.diamond().run()
    repo = Repository()
    path = _stored_file(repo, run, "scale", "value.json")
    path.write_text(json.dumps([0, 0, 0, 0, 999]))
    with pytest.raises(ArtifactCorruptError):
        repo.get_run(run.id).load("scale")
    # Changing an upstream param makes combine execute: it must not read the edited scale.
    executions.reset()
    changed = steps.diamond(name="diamond v2", offset=3).run()
    assert changed["scale"].reason == "artifact corrupt"
    assert changed.load("combine") == {"total": sum(x * 2 for x in range(5)) + sum(range(3, 8))}


def test_a_corrupt_file_whose_stat_was_preserved_is_still_never_loaded(tmp_repo):
    run = steps.diamond().run()
    repo = Repository()
    path = _stored_file(repo, run, "scale", "value.json")
    st = path.stat()
    original = path.read_bytes()
    path.write_bytes(original.replace(b"2", b"7"))  # same length
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ArtifactCorruptError):
        Repository().get_run(run.id).load("scale")


def test_the_same_model_fitted_in_two_processes_is_one_artifact(tmp_path):
    """skops names objects by id() and stamps the time: canonicalised, so teammates who fit
    the same model store one artifact and their downstream steps hit the same cache."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from zenml_collab.core.artifacts.base import save_artifact\n"
        "from zenml_collab.core.artifacts.local import LocalArtifactStore\n"
        "x = np.arange(40.0).reshape(20, 2)\n"
        "m = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, x[:, 0] > 20)\n"
        "print(save_artifact(LocalArtifactStore(Path(sys.argv[1])), m).hash)\n")
    hashes = {subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{i}")],
                             capture_output=True, text=True, check=True).stdout.strip()
              for i in range(2)}
    assert len(hashes) == 1
