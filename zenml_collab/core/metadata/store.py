"""The metadata store's queries: pipelines, runs, step runs, the cache index, artifacts,
environments.

Connection handling and retries live in :mod:`.connection`, the schema check and migrations in
:mod:`.schema`. A cached step costs exactly two statements: the cache lookup (a primary-key
seek) and the insert of its step-run row.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from zenml_collab.core.metadata import limits, runpath
from zenml_collab.core.metadata import models as m
from zenml_collab.core.metadata.liveness import RunLeases, is_abandoned, this_host
from zenml_collab.core.metadata.records import (
    PipelineRecord,
    RunRecord,
    RunStatus,
    StepRunRecord,
    StepStatus,
    _run_record,
    _step_record,
    outputs_object,
    utcnow,
)
from zenml_collab.core.metadata.schema import HEAD_REVISION, MIGRATIONS_DIR, SchemaStore
from zenml_collab.errors import PipelineError

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "MetadataStore"]


def _insert_if_absent(table: sa.Table, dialect: str) -> Any:
    """Portable "insert unless the key exists": racing members must not fail or duplicate.

    Not INSERT IGNORE: on MySQL it turns every error (a value too long, a bad foreign key)
    into a warning and writes a truncated row. ON DUPLICATE KEY UPDATE k = k only ever skips
    the duplicate; everything else still fails loudly (strict mode).
    """
    if dialect == "sqlite":
        return sqlite_dialect.insert(table).on_conflict_do_nothing()
    key = next(iter(table.primary_key.columns)) if table.name != "step_runs" \
        else table.c.position
    return mysql_dialect.insert(table).on_duplicate_key_update({key.name: key})


class _Statements:
    """The statements of one dialect, built once: building them per call was a quarter of a
    cached step's CPU time."""

    def __init__(self, dialect: str) -> None:
        self.cache_lookup = sa.select(m.cache_entries.c.outputs_json).where(
            m.cache_entries.c.cache_key == sa.bindparam("key"))
        self.cache_insert = _insert_if_absent(m.cache_entries, dialect)
        # On the autocommit run connection, a retry after a lost acknowledgement must not
        # record the step twice (the (run_id, position) key catches it).
        self.step_run_insert = _insert_if_absent(m.step_runs, dialect)
        self.artifact_insert = _insert_if_absent(m.artifacts, dialect)
        self.pipeline_insert = _insert_if_absent(m.pipelines, dialect)
        self.environment_insert = _insert_if_absent(m.environments, dialect)
        self.run_insert = _insert_if_absent(m.runs, dialect)


_STATEMENTS = {d: _Statements(d) for d in ("sqlite", "mysql")}
_HEX = re.compile(r"[0-9a-f]{1,32}")


class MetadataStore(RunLeases, SchemaStore):
    """Typed access to the metadata database behind one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, *, description: str = "") -> None:
        super().__init__(engine, description=description)
        self._q = _STATEMENTS["sqlite" if engine.dialect.name == "sqlite" else "mysql"]

    # -- limits -----------------------------------------------------------------------------
    check_limits = staticmethod(runpath.check_limits)

    # -- a run's batched reads and writes (see batch.py) -------------------------------------
    def run_start_view(self, pipeline_name: str, environment_hash: str | None
                       ) -> runpath.RunStart:
        from zenml_collab.core.metadata import batch

        return batch.run_start_view(self, pipeline_name, environment_hash)

    def lookup_step(self, *, cache_key: str, pipeline_name: str, step_name: str,
                    step_path: str) -> runpath.StepLookup:
        from zenml_collab.core.metadata import batch

        return batch.lookup_step(self, cache_key=cache_key, pipeline_name=pipeline_name,
                                 step_name=step_name, step_path=step_path)

    def record_steps(self, pending: list[runpath.Pending]) -> None:
        from zenml_collab.core.metadata import batch

        batch.record_steps(self, pending)

    # -- pipelines --------------------------------------------------------------------------
    def register_pipeline(self, *, name: str, kind: str, identity: str, config_json: str,
                          created_by: str | None, git_sha: str | None) -> tuple[int, bool]:
        """Record a pipeline once; returns (id, created). A different identity is an error."""
        limits.check_name("pipeline", name)

        def work(conn: sa.Connection) -> tuple[int, bool]:
            row = conn.execute(sa.select(m.pipelines.c.id, m.pipelines.c.identity)
                               .where(m.pipelines.c.name == name)).first()
            created = False
            if row is None:
                conn.execute(self._q.pipeline_insert.values(
                    name=name, kind=kind, identity=identity, config_json=config_json,
                    created_at=utcnow(), created_by=_clip(created_by), git_sha=git_sha))
                row = conn.execute(sa.select(m.pipelines.c.id, m.pipelines.c.identity)
                                   .where(m.pipelines.c.name == name)).one()
                created = row.identity == identity
            if row.identity != identity:
                raise PipelineError(
                    f"pipeline {name!r} already exists with a different definition",
                    "pipelines are immutable once run: copy it with "
                    f"Repository().get_pipeline_by_name({name!r}).copy(new_name=...) "
                    "or give this one a new name",
                )
            return int(row.id), created

        return self._tx(work)

    def get_pipeline(self, name: str) -> PipelineRecord | None:
        row = self._read(lambda conn: conn.execute(
            sa.select(m.pipelines).where(m.pipelines.c.name == name)).first())
        return None if row is None else PipelineRecord(
            row.name, row.kind, row.identity, row.config_json, row.created_at, row.created_by,
            row.git_sha)

    def list_pipelines(self) -> list[tuple[PipelineRecord, int, datetime | None]]:
        """Every pipeline with its number of runs and time of its last run."""
        p, r = m.pipelines, m.runs
        query = (sa.select(p, sa.func.count(r.c.id).label("n"),
                           sa.func.max(r.c.started_at).label("last"))
                 .select_from(p.outerjoin(r, r.c.pipeline_id == p.c.id))
                 .group_by(*p.c).order_by(p.c.name))
        rows = self._read(lambda conn: conn.execute(query).all())
        return [(PipelineRecord(x.name, x.kind, x.identity, x.config_json, x.created_at,
                                x.created_by, x.git_sha), int(x.n), x.last) for x in rows]

    # -- environments -----------------------------------------------------------------------
    def ensure_environment(self, env_hash: str, python: str, platform: str,
                           packages_json: str) -> None:
        self._tx(lambda conn: conn.execute(self._q.environment_insert.values(
            hash=env_hash, python=python[:64], platform=platform[:200],
            packages_json=packages_json, created_at=utcnow())))

    def get_environment(self, env_hash: str) -> dict[str, Any] | None:
        row = self._read(lambda conn: conn.execute(
            sa.select(m.environments).where(m.environments.c.hash == env_hash)).first())
        if row is None:
            return None
        return {"python": row.python, "platform": row.platform,
                "packages": json.loads(row.packages_json)}

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, *, run_id: str, pipeline_id: int, pipeline_name: str,
                  git_sha: str | None, git_dirty: bool | None, user: str, hostname: str,
                  environment_hash: str | None) -> None:
        """Record a running run with this process's PID, and keep its lease fresh."""
        now = utcnow()
        # Idempotent: a retry after a commit whose acknowledgement was lost must not fail.
        self._tx(lambda conn: conn.execute(self._q.run_insert.values(
            id=run_id, pipeline_id=pipeline_id, pipeline_name=pipeline_name,
            status=RunStatus.RUNNING.value, started_at=now, git_sha=git_sha,
            git_dirty=git_dirty, user=_clip(user), hostname=_clip(hostname),
            environment_hash=environment_hash, pid=os.getpid(), heartbeat_at=now)))
        self._hold_lease(run_id, lambda: self._beat(run_id))

    def _beat(self, run_id: str) -> None:
        # Own pooled connection, no retry: a missed beat only shortens the lease.
        with self.engine.begin() as conn:
            conn.execute(m.runs.update().where(
                m.runs.c.id == run_id, m.runs.c.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=utcnow()))

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self._release_lease(run_id)
        self._tx(lambda conn: conn.execute(m.runs.update().where(m.runs.c.id == run_id).values(
            status=RunStatus(status).value, finished_at=utcnow(), error=error)))

    def deliver_deferred(self) -> int:
        """Record run endings kept while the store was down (only runs still ``running``)."""
        from zenml_collab.core.metadata import outbox

        if self.outbox_dir is None:
            return 0

        def finish(run_id: str, status: str, error: str | None) -> None:
            self._tx(lambda conn: conn.execute(
                m.runs.update().where(m.runs.c.id == run_id)
                .where(m.runs.c.status == RunStatus.RUNNING.value)
                .values(status=RunStatus(status).value, finished_at=utcnow(), error=error)))

        return outbox.deliver(self.outbox_dir, finish)

    def _record(self, row: Any, now: datetime, host: str) -> RunRecord:
        abandoned = is_abandoned(status=row.status, hostname=row.hostname, pid=row.pid,
                                 heartbeat_at=row.heartbeat_at, started_at=row.started_at,
                                 now=now, host=host)
        return _run_record(row, RunStatus.ABANDONED.value if abandoned else None)

    def _records(self, rows: Iterable[Any]) -> list[RunRecord]:
        now, host = utcnow(), this_host()
        return [self._record(r, now, host) for r in rows]

    def list_runs(self, pipeline_name: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Recent runs; a ``running`` run whose process is gone is shown as ``abandoned``."""
        query = sa.select(m.runs).order_by(m.runs.c.started_at.desc()).limit(limit)
        if pipeline_name is not None:
            query = query.where(m.runs.c.pipeline_name == pipeline_name)
        return self._records(self._read(lambda conn: conn.execute(query).all()))

    def get_run(self, run_id: str) -> RunRecord | None:
        """A run by id or unique id prefix (hex, non-empty); ``None`` if none or several."""
        run_id = run_id.strip().lower()
        if not _HEX.fullmatch(run_id):
            return None  # '', '%', '______' and friends match nothing
        if len(run_id) == 32:
            query = sa.select(m.runs).where(m.runs.c.id == run_id)
        else:
            query = sa.select(m.runs).where(
                m.runs.c.id.startswith(run_id, autoescape=True)).limit(2)
        rows = self._read(lambda conn: conn.execute(query).all())
        if len(rows) != 1:
            return None
        return self._records(rows)[0]

    def latest_run(self, pipeline_name: str,
                   status: str = RunStatus.COMPLETED.value) -> RunRecord | None:
        query = (sa.select(m.runs).where(m.runs.c.pipeline_name == pipeline_name,
                                         m.runs.c.status == status)
                 .order_by(m.runs.c.started_at.desc()).limit(1))
        row = self._read(lambda conn: conn.execute(query).first())
        return None if row is None else self._records([row])[0]

    def mark_abandoned(self) -> list[RunRecord]:
        """Mark every ``running`` run whose process is gone as ``abandoned``; returns them."""
        running = self._read(lambda conn: conn.execute(sa.select(m.runs).where(
            m.runs.c.status == RunStatus.RUNNING.value)).all())
        gone = [r for r in self._records(running) if r.status == RunStatus.ABANDONED]
        if not gone:
            return []
        now = utcnow()

        def work(conn: sa.Connection) -> None:
            for record in gone:
                where = "this host" if record.hostname == this_host() else record.hostname
                conn.execute(m.runs.update().where(
                    m.runs.c.id == record.id, m.runs.c.status == RunStatus.RUNNING.value)
                    .values(status=RunStatus.ABANDONED.value, finished_at=now,
                            error=f"abandoned: its process (pid {record.pid} on {where}) is "
                                  "gone or stopped renewing its lease"))

        self._tx(work)
        return gone

    def step_runs(self, run_id: str) -> list[StepRunRecord]:
        query = (sa.select(m.step_runs).where(m.step_runs.c.run_id == run_id)
                 .order_by(m.step_runs.c.position))
        return [_step_record(r) for r in self._read(lambda conn: conn.execute(query).all())]

    # -- the per-step hot path --------------------------------------------------------------
    def cached_outputs(self, cache_key: str) -> dict[str, Any] | None:
        """The outputs recorded under ``cache_key`` (one primary-key lookup)."""
        value = self._tx(lambda conn: conn.execute(self._q.cache_lookup,
                                                   {"key": cache_key}).scalar())
        if value is None:
            return None
        return outputs_object(value, cache_key)

    def remember_outputs(self, cache_key: str, *, step_path: str, outputs: dict[str, Any],
                         run_id: str, new_artifacts: list[dict[str, Any]] | None = None) -> None:
        """Record outputs derived after a run (the data views of an older run, computed on
        first view; ``run_id`` is the run they describe) under ``cache_key``: its artifacts and
        a cache entry, no step run. Racing writers of one key keep the first entry."""
        outputs_json = json.dumps(outputs, sort_keys=True)
        limits.check_json(f"the outputs recorded for {step_path}", outputs_json)
        now = utcnow()
        q = self._q

        def work(conn: sa.Connection) -> None:
            if new_artifacts:
                conn.execute(q.artifact_insert, _artifact_rows(new_artifacts, now))
            conn.execute(q.cache_insert, {
                "cache_key": cache_key, "step_path": step_path, "outputs_json": outputs_json,
                "run_id": run_id, "created_at": now})

        self._tx(work)

    def record_step(self, record: StepRunRecord, *,
                    new_artifacts: list[dict[str, Any]] | None = None, cache: bool = False,
                    replace_cache: bool = False) -> None:
        """Insert a step run; for an execution also its artifacts and its cache entry.

        Sizes are checked before the first statement: on the autocommit run connection a
        refused step row must not leave its cache entry behind.
        """
        outputs_json = json.dumps(record.outputs, sort_keys=True) if record.outputs else None
        params_json = json.dumps(record.params, sort_keys=True)
        inputs_json = json.dumps(record.inputs, sort_keys=True)
        limits.check_name("step", record.step_name)
        limits.check_name("step import path", record.step_path, limits.STEP_PATH_MAX)
        limits.check_json(f"the parameters of step {record.step_name!r}", params_json)
        limits.check_json(f"the inputs of step {record.step_name!r}", inputs_json)
        if outputs_json:
            limits.check_json(f"the outputs of step {record.step_name!r}", outputs_json)
        now = utcnow()
        q = self._q

        def work(conn: sa.Connection) -> None:
            if new_artifacts:
                conn.execute(q.artifact_insert, _artifact_rows(new_artifacts, now))
            if replace_cache:
                # The entry points at artifacts that are gone: the new execution replaces it.
                conn.execute(m.cache_entries.delete().where(
                    m.cache_entries.c.cache_key == record.cache_key))
            if cache and outputs_json:
                conn.execute(q.cache_insert, {
                    "cache_key": record.cache_key, "step_path": record.step_path,
                    "outputs_json": outputs_json, "run_id": record.run_id, "created_at": now})
            conn.execute(q.step_run_insert, {
                "run_id": record.run_id, "pipeline_name": record.pipeline_name,
                "step_name": record.step_name, "step_path": record.step_path,
                "position": record.position, "cache_key": record.cache_key,
                "code_hash": record.code_hash, "params_json": params_json,
                "inputs_json": inputs_json, "outputs_json": outputs_json,
                "status": StepStatus(record.status).value, "reason": record.reason[:500],
                "started_at": record.started_at, "duration_ms": record.duration_ms,
                "execution_json": record.execution_json()})

        self._tx(work)

    def previous_step_run(self, pipeline_name: str, step_name: str,
                          step_path: str) -> StepRunRecord | None:
        """The latest earlier run of this step (same pipeline first, else same code path).

        Only called on a cache miss, to explain it.
        """
        s = m.step_runs
        ok = s.c.status.in_((StepStatus.EXECUTED.value, StepStatus.CACHED.value))

        def work(conn: sa.Connection) -> Any:
            row = conn.execute(sa.select(s).where(s.c.pipeline_name == pipeline_name,
                                                  s.c.step_name == step_name, ok)
                               .order_by(s.c.id.desc()).limit(1)).first()
            if row is None:
                row = conn.execute(sa.select(s).where(s.c.step_path == step_path, ok)
                                   .order_by(s.c.id.desc()).limit(1)).first()
            return row

        row = self._tx(work)
        return None if row is None else _step_record(row)


def _clip(text: str | None, limit: int = limits.NAME_MAX) -> str | None:
    # Who and where are recorded for people to read; a long host name is clipped, not refused.
    return None if text is None else text[:limit]


def _artifact_rows(artifacts: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Rows of the artifacts table for artifact references (``ArtifactRef.to_json()``)."""
    return [{"hash": a["hash"], "materializer": a["materializer"], "size": a["size"],
             "files_json": json.dumps(a["files"]), "created_at": now} for a in artifacts]
