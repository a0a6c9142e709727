"""Read an embedded (SQLite) metadata store through the driver alone.

Opening the store through SQLAlchemy costs its import (~90 ms) and three statements (the table
list, the revision, the store id) before the first useful one: most of the wait of a
``view_statistics()`` in a fresh process, which reads four rows. :class:`LiteReader` answers the
reads a view makes (a pipeline, its latest run, that run's steps, a cache entry) with the
standard library's ``sqlite3`` and opens with one statement.

It is an accelerator, never a second source of truth: :func:`open_lite` returns ``None``
whenever the database is anything but a current store of the expected identity (missing,
empty, older, newer, foreign, locked, unreadable), and the caller then opens the full
:class:`~zenml_collab.core.metadata.store.MetadataStore`, which explains the problem or
initialises and migrates. It never writes. Its answers equal the full store's; a test compares
them record by record on the same database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from zenml_collab.core.metadata.liveness import is_abandoned, this_host
from zenml_collab.core.metadata.records import (
    PipelineRecord,
    RunRecord,
    RunStatus,
    StepRunRecord,
    _run_record,
    _step_record,
    outputs_object,
    utcnow,
)

__all__ = ["LiteReader", "MetadataReader", "open_lite"]

# The revision this code reads (kept equal to schema.HEAD_REVISION by a test: importing the
# schema module would import SQLAlchemy, which is what this module exists to avoid).
HEAD_REVISION = "0005"

_OPEN = ("SELECT (SELECT version_num FROM alembic_version), "
         "(SELECT store_id FROM store_identity WHERE id = 1)")
_PIPELINE = ("SELECT name, kind, identity, config_json, created_at, created_by, git_sha "
             "FROM pipelines WHERE name = ?")
_RUN_COLUMNS = ("id, pipeline_name, status, started_at, finished_at, git_sha, git_dirty, "
                "user, hostname, environment_hash, error, pid, heartbeat_at")
_LATEST_RUN = (f"SELECT {_RUN_COLUMNS} FROM runs WHERE pipeline_name = ? AND status = ? "
               "ORDER BY started_at DESC LIMIT 1")
_STEP_RUNS = ("SELECT run_id, pipeline_name, step_name, step_path, position, cache_key, "
              "code_hash, params_json, inputs_json, outputs_json, status, reason, started_at, "
              "duration_ms, execution_json FROM step_runs WHERE run_id = ? ORDER BY position")
_CACHE_ENTRY = "SELECT outputs_json FROM cache_entries WHERE cache_key = ?"

_TIMESTAMPS = frozenset({"created_at", "started_at", "finished_at", "heartbeat_at"})


class MetadataReader(Protocol):
    """The reads a data view makes: :class:`LiteReader` and the full store both answer them."""

    def get_pipeline(self, name: str) -> PipelineRecord | None: ...

    def latest_run(self, pipeline_name: str, status: str = ...) -> RunRecord | None: ...

    def step_runs(self, run_id: str) -> list[StepRunRecord]: ...

    def cached_outputs(self, cache_key: str) -> dict[str, Any] | None: ...


class _Row:
    """A row with attribute access by column name (what the record builders read)."""

    __slots__ = ("_values",)

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        self._values = {name: (_timestamp(value) if name in _TIMESTAMPS else value)
                        for name, value in zip(names, values, strict=True)}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


def _timestamp(value: Any) -> datetime | None:
    # SQLAlchemy stores SQLite DATETIMEs as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text.
    return None if value is None else datetime.fromisoformat(value)


class LiteReader:
    """The reads of a data view on a current SQLite store, through ``sqlite3`` alone."""

    def __init__(self, conn: sqlite3.Connection, description: str) -> None:
        self._conn = conn
        self.description = description

    def _fetch(self, sql: str, params: Sequence[Any] | Mapping[str, Any]
               ) -> tuple[list[str], list[Any]]:
        """Run one read; a driver error leaves as the full store's classified error."""
        try:
            cursor = self._conn.execute(sql, params)
            return [d[0] for d in cursor.description], cursor.fetchall()
        except sqlite3.Error as exc:
            from zenml_collab.dberrors import db_error

            raise db_error(exc, f"the metadata store {self.description}") from None

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[_Row]:
        names, rows = self._fetch(sql, params)
        return [_Row(names, values) for values in rows]

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        rows = self._rows(_PIPELINE, (name,))
        if not rows:
            return None
        r = rows[0]
        return PipelineRecord(r.name, r.kind, r.identity, r.config_json, r.created_at,
                              r.created_by, r.git_sha)

    def latest_run(self, pipeline_name: str,
                   status: str = RunStatus.COMPLETED.value) -> RunRecord | None:
        rows = self._rows(_LATEST_RUN, (pipeline_name, status))
        if not rows:
            return None
        row = rows[0]
        abandoned = is_abandoned(status=row.status, hostname=row.hostname, pid=row.pid,
                                 heartbeat_at=row.heartbeat_at, started_at=row.started_at,
                                 now=utcnow(), host=this_host())
        return _run_record(row, RunStatus.ABANDONED.value if abandoned else None)

    def step_runs(self, run_id: str) -> list[StepRunRecord]:
        return [_step_record(row) for row in self._rows(_STEP_RUNS, (run_id,))]

    def cached_outputs(self, cache_key: str) -> dict[str, Any] | None:
        _, rows = self._fetch(_CACHE_ENTRY, (cache_key,))
        if not rows or rows[0][0] is None:
            return None
        return outputs_object(rows[0][0], cache_key)

    def close(self) -> None:
        self._conn.close()


def open_lite(path: Path, *, expected_store_id: str | None) -> LiteReader | None:
    """A :class:`LiteReader` on the SQLite database at ``path`` if it is a current store (of
    identity ``expected_store_id`` when one is expected); ``None`` otherwise."""
    if not path.is_file() or sqlite3.threadsafety != 3:
        # Never create the database here (the full store initialises it); and share one
        # connection between threads only where the library is built serialized.
        return None
    try:
        # A short wait to open: a store locked by a writer gets the full store, which waits
        # and explains; reads, once open, wait like the full store's (30 s).
        conn = sqlite3.connect(path, timeout=0.5, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        revision, store_id = conn.execute(_OPEN).fetchone()
        conn.execute("PRAGMA busy_timeout = 30000")
    except sqlite3.Error:
        conn.close()  # no such table (empty, foreign, pre-0004), locked, corrupt
        return None
    if revision != HEAD_REVISION or (expected_store_id is not None
                                     and store_id != expected_store_id):
        conn.close()
        return None
    return LiteReader(conn, f"sqlite:{path}")
