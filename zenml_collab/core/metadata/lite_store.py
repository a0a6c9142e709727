"""A run on the embedded (SQLite) store through the driver alone.

What :class:`~.lite.LiteReader` is for the views, :class:`LiteStore` is for a run: the
statements of :class:`~.runpath.RunStore` on ``sqlite3``, so a ``collab run`` of a cached
pipeline imports no SQLAlchemy (~90 ms of a ~0.35 s command) and opens the store with one
statement. The SQL is the full store's, written for SQLite by hand; its answers and the rows
it writes equal the full store's (a test runs the same pipelines through both and compares the
databases row by row), and every other test of a run on the embedded store runs through it.

Only :func:`open_lite_store` makes one, for a store that is current and of the expected
identity; anything else (a new, older, newer or foreign database, a pending outbox) opens the
full store, which initialises, migrates or explains.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from zenml_collab.core.metadata import limits, runpath
from zenml_collab.core.metadata.lite import LiteReader, open_lite
from zenml_collab.core.metadata.liveness import RunLeases
from zenml_collab.core.metadata.records import (
    RunStatus,
    StepRunRecord,
    StepStatus,
    _step_record,
    outputs_object,
    utcnow,
)
from zenml_collab.errors import PipelineError

__all__ = ["LiteStore", "open_lite_store"]

_DONE = "('executed', 'cached')"  # the step statuses a cache decision may rely on

_START = f"""
SELECT header.p_id, header.p_identity, header.env_hash,
       prior.step_name, prior.step_path, prior.cache_key, prior.outputs_json
FROM (SELECT (SELECT id FROM pipelines WHERE name = :pipeline) AS p_id,
             (SELECT identity FROM pipelines WHERE name = :pipeline) AS p_identity,
             (SELECT hash FROM environments WHERE hash = :env) AS env_hash) AS header
LEFT OUTER JOIN (
    SELECT s.step_name, s.step_path, s.cache_key, c.outputs_json
    FROM step_runs AS s
    JOIN (SELECT id FROM runs WHERE pipeline_name = :pipeline AND status = 'completed'
          ORDER BY started_at DESC LIMIT 1) AS latest ON s.run_id = latest.id
    LEFT OUTER JOIN cache_entries AS c ON c.cache_key = s.cache_key
    WHERE s.status IN {_DONE}) AS prior ON 1 = 1
"""

_STEP_COLUMNS = ("id, run_id, pipeline_name, step_name, step_path, position, cache_key, "
                 "code_hash, params_json, inputs_json, outputs_json, status, reason, "
                 "started_at, duration_ms, execution_json")

_LOOKUP = f"""
SELECT header.hit_outputs_json, previous.*
FROM (SELECT (SELECT outputs_json FROM cache_entries WHERE cache_key = :key)
             AS hit_outputs_json) AS header
LEFT OUTER JOIN (
    SELECT * FROM (SELECT {_STEP_COLUMNS}, 0 AS preference FROM step_runs
                   WHERE pipeline_name = :pipeline AND step_name = :step
                     AND status IN {_DONE} ORDER BY id DESC LIMIT 1)
    UNION ALL
    SELECT * FROM (SELECT {_STEP_COLUMNS}, 1 AS preference FROM step_runs
                   WHERE step_path = :path AND status IN {_DONE} ORDER BY id DESC LIMIT 1)
) AS previous ON 1 = 1
"""

_PREVIOUS_BY_NAME = (f"SELECT {_STEP_COLUMNS} FROM step_runs WHERE pipeline_name = ? "
                     f"AND step_name = ? AND status IN {_DONE} ORDER BY id DESC LIMIT 1")
_PREVIOUS_BY_PATH = (f"SELECT {_STEP_COLUMNS} FROM step_runs WHERE step_path = ? "
                     f"AND status IN {_DONE} ORDER BY id DESC LIMIT 1")

#: The columns each insert writes (``id`` of pipelines and step_runs is the database's).
COLUMNS: dict[str, tuple[str, ...]] = {
    "pipelines": ("name", "kind", "identity", "config_json", "created_at", "created_by",
                  "git_sha"),
    "environments": ("hash", "python", "platform", "packages_json", "created_at"),
    "runs": ("id", "pipeline_id", "pipeline_name", "status", "started_at", "git_sha",
             "git_dirty", "user", "hostname", "environment_hash", "pid", "heartbeat_at"),
    "step_runs": ("run_id", "pipeline_name", "step_name", "step_path", "position",
                  "cache_key", "code_hash", "params_json", "inputs_json", "outputs_json",
                  "status", "reason", "started_at", "duration_ms", "execution_json"),
    "cache_entries": ("cache_key", "step_path", "outputs_json", "run_id", "created_at"),
    "artifacts": ("hash", "materializer", "size", "files_json", "created_at"),
}


def _insert(table: str) -> str:
    """Insert unless the key exists: racing members neither fail nor duplicate, and every
    other error (NOT NULL, a foreign key) still fails, as the full store's insert does."""
    columns = COLUMNS[table]
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join(':' + c for c in columns)}) ON CONFLICT DO NOTHING")


_INSERTS = {table: _insert(table) for table in COLUMNS}


def _value(value: Any) -> Any:
    # SQLAlchemy's SQLite DATETIME storage format (microseconds always written), so rows
    # written here sort and read back exactly like the full store's.
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return int(value) if isinstance(value, bool) else value


def _clip(text: str | None) -> str | None:
    # Who and where are recorded for people to read; a long host name is clipped, not refused.
    return None if text is None else text[:limits.NAME_MAX]


def _params(row: Mapping[str, Any], table: str) -> dict[str, Any]:
    return {c: _value(row.get(c)) for c in COLUMNS[table]}


class LiteStore(RunLeases, LiteReader):
    """:class:`~.runpath.RunStore` on a current SQLite store, through ``sqlite3``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, description: str) -> None:
        super().__init__(conn, description)
        self.path = path

    # -- plumbing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def run_session(self) -> Iterator[None]:
        yield  # one connection for the whole command already

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction (taking the write lock at once), committed or rolled back here."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (FULL)
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> Exception:
        from zenml_collab.dberrors import db_error

        return db_error(exc, f"the metadata store {self.description}")

    def _write(self, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> None:
        try:
            self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    check_limits = staticmethod(runpath.check_limits)

    # -- reads ------------------------------------------------------------------------------
    def run_start_view(self, pipeline_name: str, environment_hash: str | None
                       ) -> runpath.RunStart:
        rows = self._rows(_START, {"pipeline": pipeline_name, "env": environment_hash or ""})
        return runpath.run_start(rows, environment_hash)

    def lookup_step(self, *, cache_key: str, pipeline_name: str, step_name: str,
                    step_path: str) -> runpath.StepLookup:
        rows = self._rows(_LOOKUP, {"key": cache_key, "pipeline": pipeline_name,
                                    "step": step_name, "path": step_path})
        hit = rows[0].hit_outputs_json
        found = sorted((r for r in rows if r.run_id is not None), key=lambda r: r.preference)
        return runpath.StepLookup(None if hit is None else outputs_object(hit, cache_key),
                                  _step_record(found[0]) if found else None)

    def previous_step_run(self, pipeline_name: str, step_name: str,
                          step_path: str) -> StepRunRecord | None:
        rows = (self._rows(_PREVIOUS_BY_NAME, (pipeline_name, step_name))
                or self._rows(_PREVIOUS_BY_PATH, (step_path,)))
        return _step_record(rows[0]) if rows else None

    # -- pipelines and environments ---------------------------------------------------------
    def register_pipeline(self, *, name: str, kind: str, identity: str, config_json: str,
                          created_by: str | None, git_sha: str | None) -> tuple[int, bool]:
        """Record a pipeline once; returns (id, created). A different identity is an error."""
        limits.check_name("pipeline", name)
        select = "SELECT id, identity FROM pipelines WHERE name = ?"
        with self._tx() as conn:
            row = conn.execute(select, (name,)).fetchone()
            created = False
            if row is None:
                conn.execute(_INSERTS["pipelines"], _params({
                    "name": name, "kind": kind, "identity": identity,
                    "config_json": config_json, "created_at": utcnow(),
                    "created_by": _clip(created_by),
                    "git_sha": git_sha}, "pipelines"))
                row = conn.execute(select, (name,)).fetchone()
                created = row[1] == identity
        if row[1] != identity:
            raise PipelineError(
                f"pipeline {name!r} already exists with a different definition",
                "pipelines are immutable once run: copy it with "
                f"Repository().get_pipeline_by_name({name!r}).copy(new_name=...) "
                "or give this one a new name")
        return int(row[0]), created

    def ensure_environment(self, env_hash: str, python: str, platform: str,
                           packages_json: str) -> None:
        self._write(_INSERTS["environments"], _params({
            "hash": env_hash, "python": python[:64], "platform": platform[:200],
            "packages_json": packages_json, "created_at": utcnow()}, "environments"))

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, *, run_id: str, pipeline_id: int, pipeline_name: str,
                  git_sha: str | None, git_dirty: bool | None, user: str, hostname: str,
                  environment_hash: str | None) -> None:
        now = utcnow()
        self._write(_INSERTS["runs"], _params({
            "id": run_id, "pipeline_id": pipeline_id, "pipeline_name": pipeline_name,
            "status": RunStatus.RUNNING.value, "started_at": now, "git_sha": git_sha,
            "git_dirty": git_dirty, "user": _clip(user), "hostname": _clip(hostname),
            "environment_hash": environment_hash,
            "pid": os.getpid(), "heartbeat_at": now}, "runs"))
        self._hold_lease(run_id, lambda: self._beat(run_id))

    def _beat(self, run_id: str) -> None:
        # Its own connection (the heartbeat thread), no retry: a missed beat only shortens
        # the lease.
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = ?",
                         (_value(utcnow()), run_id, RunStatus.RUNNING.value))
        finally:
            conn.close()

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self._release_lease(run_id)
        self._write("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (RunStatus(status).value, _value(utcnow()), error, run_id))

    # -- steps ------------------------------------------------------------------------------
    def record_steps(self, pending: list[runpath.Pending]) -> None:
        """The full store's batched write: artifacts, stale cache entries, cache entries,
        step runs (here in one transaction)."""
        if not pending:
            return
        rows = runpath.pending_rows(pending, utcnow())
        with self._tx() as conn:
            self._insert_rows(conn, "artifacts", rows.artifacts)
            conn.executemany("DELETE FROM cache_entries WHERE cache_key = ?",
                             [(key,) for key in rows.stale_keys])
            self._insert_rows(conn, "cache_entries", rows.cache_entries)
            self._insert_rows(conn, "step_runs", rows.step_runs)

    def record_step(self, record: StepRunRecord, *,
                    new_artifacts: list[dict[str, Any]] | None = None, cache: bool = False,
                    replace_cache: bool = False) -> None:
        """One step's records at once (a failed step: nothing waits for a batch)."""
        StepStatus(record.status)  # as the full store: an unknown status is refused
        runpath.check_record(record)
        self.record_steps([runpath.Pending(record, tuple(new_artifacts or ()),
                                           cache=cache, replace_cache=replace_cache)])

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, table: str,
                     rows: Iterable[Mapping[str, Any]]) -> None:
        conn.executemany(_INSERTS[table], [_params(row, table) for row in rows])

    def close(self) -> None:
        self._release_all()
        super().close()


def open_lite_store(path: Path, *, expected_store_id: str | None) -> LiteStore | None:
    """A :class:`LiteStore` on ``path`` if it is a current store of the expected identity."""
    reader = open_lite(path, expected_store_id=expected_store_id)
    if reader is None:
        return None
    conn = reader._conn
    try:
        # As the full store's connections (engine.py): WAL is the database's own setting.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error:
        conn.close()
        return None
    return LiteStore(conn, path, reader.description)

