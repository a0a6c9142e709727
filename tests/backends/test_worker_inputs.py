"""What a worker is handed is untrusted: a broken source archive or malformed store settings
give a named error and the worker's exit code, never a traceback, and nothing is executed."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.core.artifacts.base import save_artifact
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.core.backends.source import SourceArchive, unpack_source
from zenml_collab.core.backends.task import WorkerError
from zenml_collab.worker import EXIT_WORKER_ERROR, STORES_ENV, STORES_FILE_ENV


def _tar(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo("escape")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tar.addfile(info)
    return buffer.getvalue()


def _archive(store: LocalArtifactStore, data: bytes) -> SourceArchive:
    return SourceArchive(commit=None, tree=save_artifact(store, data), overlay=None)


@pytest.mark.parametrize("data", [
    b"not a tar at all, but long enough to look like one" * 20,
    _tar({"steps.py": b"x = 1\n"})[:700],  # truncated mid-member
    _tar({"../outside.py": b"import os\n"}),
    _tar({}, link="/etc/passwd"),
    gzip.compress(_tar({"steps.py": b"x = 1\n"}))[:300],  # compressed (never written), cut
    _tar({"pkg": b"a file", "pkg/mod.py": b"x = 1\n"}),  # a file where a directory goes
    _tar({"a" * 300 + ".py": b"x = 1\n"}),  # a name the file system refuses
], ids=["garbage", "truncated", "dotdot", "symlink-out", "gzip-cut", "file-then-dir",
        "name-too-long"])
def test_a_broken_or_hostile_source_archive_is_refused_by_name(tmp_path: Path,
                                                               data: bytes) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    dest = tmp_path / "src"
    with pytest.raises(WorkerError, match=r"source archive .* cannot be unpacked"):
        unpack_source(_archive(store, data), store, dest)
    assert not (tmp_path / "outside.py").exists()
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_an_absolute_member_lands_inside_the_work_tree(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    unpack_source(_archive(store, _tar({"/tmp/collab-evil-member.py": b"x = 1\n"})), store,
                  tmp_path / "src")
    assert (tmp_path / "src" / "tmp" / "collab-evil-member.py").is_file()
    assert not Path("/tmp/collab-evil-member.py").exists()


def test_a_source_that_cannot_be_laid_out_leaves_no_work_tree(tmp_path: Path) -> None:
    from zenml_collab.core.backends.task import StepTask
    from zenml_collab.worker import _prepare_source

    store = LocalArtifactStore(tmp_path / "artifacts")
    archive = _archive(store, _tar({".collab": b"a file where the marker directory goes"}))
    task = StepTask.from_arg(_task_arg(source=archive.to_json()))
    workdir = tmp_path / "collab-worker-x"
    with pytest.raises(WorkerError, match="cannot be laid out"):
        _prepare_source(task, store, workdir / "src")
    assert not workdir.exists()


def test_a_malformed_list_of_deleted_files_is_refused(tmp_path: Path) -> None:
    from zenml_collab.core.backends.source import DELETED

    store = LocalArtifactStore(tmp_path / "artifacts")
    data = _tar({"steps.py": b"x = 1\n", DELETED: b'{"not": "a list"}'})
    with pytest.raises(WorkerError, match="deleted files is malformed"):
        unpack_source(_archive(store, data), store, tmp_path / "src")


def _task_arg(source: dict[str, Any] | None = None) -> str:
    from zenml_collab.core.backends.task import StepTask

    return StepTask(run_id="0" * 32, pipeline_name="p", step_name="s", step_path="m:f",
                    position=0, cache_key="0" * 64, code_hash="0" * 64, params={}, inputs={},
                    input_hashes={}, output_names=("output",), reason="new",
                    backend="docker", source=source or {}).to_arg()


@pytest.mark.parametrize("settings", [
    "{not json",
    json.dumps({"artifacts": "x"}),
    json.dumps({"metadata": {"kind": "oracle"}, "artifacts": "x"}),
    json.dumps(["a", "list"]),
    json.dumps({"metadata": {"kind": "sqlite"}, "artifacts": None}),
    json.dumps({"metadata": {"kind": "sqlite"}, "artifacts": {"uri": "gs://b"}}),
    json.dumps({"metadata": {"kind": "sqlite"}, "artifacts": " "}),
], ids=["not-json", "no-metadata", "bad-kind", "a-list", "artifacts-null", "artifacts-object",
        "artifacts-blank"])
def test_malformed_store_settings_are_a_named_worker_error(
        monkeypatch: pytest.MonkeyPatch, settings: str) -> None:
    from zenml_collab.config import MetadataConfig
    from zenml_collab.worker import _stores

    monkeypatch.delenv(STORES_FILE_ENV, raising=False)
    monkeypatch.setenv(STORES_ENV, settings)
    with pytest.raises(WorkerError, match="store settings given to this worker are malformed"):
        _stores(MetadataConfig)


def test_the_worker_process_names_malformed_settings_with_its_exit_code(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != STORES_FILE_ENV}
    env[STORES_ENV] = "{not json"
    done = subprocess.run([sys.executable, "-m", "zenml_collab.worker", "--task", _task_arg()],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_WORKER_ERROR, done.stderr
    assert done.stderr.startswith("error: the store settings given to this worker are "
                                  "malformed"), done.stderr
    assert "Traceback" not in done.stderr
