"""The metadata store's queries: pipelines, runs, step runs, the cache index, artifacts,
environments.

Connection handling and retries live in :mod:`.connection`, the schema check and migrations in
:mod:`.schema`. A cached step costs exactly two statements: the cache lookup (a primary-key
seek) and the insert of its step-run row.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from zenml_collab.core.metadata import models as m
from zenml_collab.core.metadata.records import (
    PipelineRecord,
    RunRecord,
    StepRunRecord,
    _run_record,
    _step_record,
    utcnow,
)
from zenml_collab.core.metadata.schema import HEAD_REVISION, MIGRATIONS_DIR, SchemaStore
from zenml_collab.errors import PipelineError

__all__ = ["HEAD_REVISION", "MIGRATIONS_DIR", "MetadataStore"]


def _insert_ignore(table: sa.Table) -> Any:
    # Portable "insert unless the key exists": racing members must not fail or duplicate.
    return table.insert().prefix_with("OR IGNORE", dialect="sqlite").prefix_with(
        "IGNORE", dialect="mysql").prefix_with("IGNORE", dialect="mariadb")


# The per-step statements, built once: building them per call was a quarter of a cached
# step's CPU time.
_CACHE_LOOKUP = sa.select(m.cache_entries.c.outputs_json).where(
    m.cache_entries.c.cache_key == sa.bindparam("key"))
_CACHE_INSERT = _insert_ignore(m.cache_entries)
# IGNORE: on the autocommit run connection, a retry after a lost acknowledgement must not
# record the step twice (the (run_id, position) key catches it).
_STEP_RUN_INSERT = _insert_ignore(m.step_runs)


class MetadataStore(SchemaStore):
    """Typed access to the metadata database behind one SQLAlchemy engine."""

    # -- pipelines --------------------------------------------------------------------------
    def register_pipeline(self, *, name: str, kind: str, identity: str, config_json: str,
                          created_by: str | None, git_sha: str | None) -> tuple[int, bool]:
        """Record a pipeline once; returns (id, created). A different identity is an error."""

        def work(conn: sa.Connection) -> tuple[int, bool]:
            row = conn.execute(sa.select(m.pipelines.c.id, m.pipelines.c.identity)
                               .where(m.pipelines.c.name == name)).first()
            created = False
            if row is None:
                conn.execute(_insert_ignore(m.pipelines).values(
                    name=name, kind=kind, identity=identity, config_json=config_json,
                    created_at=utcnow(), created_by=created_by, git_sha=git_sha))
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
        with self._connect() as conn:
            row = conn.execute(sa.select(m.pipelines).where(m.pipelines.c.name == name)).first()
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
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [(PipelineRecord(x.name, x.kind, x.identity, x.config_json, x.created_at,
                                x.created_by, x.git_sha), int(x.n), x.last) for x in rows]

    # -- environments -----------------------------------------------------------------------
    def ensure_environment(self, env_hash: str, python: str, platform: str,
                           packages_json: str) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(_insert_ignore(m.environments).values(
                hash=env_hash, python=python, platform=platform[:200],
                packages_json=packages_json, created_at=utcnow()))

        self._tx(work)

    def get_environment(self, env_hash: str) -> dict[str, Any] | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(m.environments)
                               .where(m.environments.c.hash == env_hash)).first()
        if row is None:
            return None
        return {"python": row.python, "platform": row.platform,
                "packages": json.loads(row.packages_json)}

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, *, run_id: str, pipeline_id: int, pipeline_name: str,
                  git_sha: str | None, git_dirty: bool | None, user: str, hostname: str,
                  environment_hash: str | None) -> None:
        def work(conn: sa.Connection) -> None:
            # IGNORE: a retry after a commit whose acknowledgement was lost must not fail.
            conn.execute(_insert_ignore(m.runs).values(
                id=run_id, pipeline_id=pipeline_id, pipeline_name=pipeline_name,
                status="running", started_at=utcnow(), git_sha=git_sha, git_dirty=git_dirty,
                user=user[:200], hostname=hostname[:200], environment_hash=environment_hash))

        self._tx(work)

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(m.runs.update().where(m.runs.c.id == run_id).values(
                status=status, finished_at=utcnow(), error=error))

        self._tx(work)

    def list_runs(self, pipeline_name: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = sa.select(m.runs).order_by(m.runs.c.started_at.desc()).limit(limit)
        if pipeline_name is not None:
            query = query.where(m.runs.c.pipeline_name == pipeline_name)
        with self._connect() as conn:
            return [_run_record(r) for r in conn.execute(query)]

    def get_run(self, run_id: str) -> RunRecord | None:
        """A run by id or unique id prefix (>= 6 characters)."""
        with self._connect() as conn:
            if len(run_id) == 32:
                rows = conn.execute(sa.select(m.runs).where(m.runs.c.id == run_id)).all()
            else:
                rows = conn.execute(sa.select(m.runs).where(m.runs.c.id.startswith(run_id))
                                    .limit(2)).all()
        if len(rows) != 1:
            return None
        return _run_record(rows[0])

    def latest_run(self, pipeline_name: str, status: str = "completed") -> RunRecord | None:
        query = (sa.select(m.runs).where(m.runs.c.pipeline_name == pipeline_name,
                                         m.runs.c.status == status)
                 .order_by(m.runs.c.started_at.desc()).limit(1))
        with self._connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _run_record(row)

    def step_runs(self, run_id: str) -> list[StepRunRecord]:
        query = (sa.select(m.step_runs).where(m.step_runs.c.run_id == run_id)
                 .order_by(m.step_runs.c.position))
        with self._connect() as conn:
            return [_step_record(r) for r in conn.execute(query)]

    # -- the per-step hot path --------------------------------------------------------------
    def cached_outputs(self, cache_key: str) -> dict[str, Any] | None:
        """The outputs recorded under ``cache_key`` (one primary-key lookup)."""
        try:
            value = self._tx(lambda conn: conn.execute(_CACHE_LOOKUP, {"key": cache_key}).scalar())
        except sa.exc.OperationalError as exc:
            raise self._connectivity_error(exc) from None
        return None if value is None else dict(json.loads(value))

    def record_step(self, record: StepRunRecord, *,
                    new_artifacts: list[dict[str, Any]] | None = None, cache: bool = False,
                    replace_cache: bool = False) -> None:
        """Insert a step run; for an execution also its artifacts and its cache entry."""
        outputs_json = json.dumps(record.outputs, sort_keys=True) if record.outputs else None
        now = utcnow()

        def work(conn: sa.Connection) -> None:
            if new_artifacts:
                conn.execute(_insert_ignore(m.artifacts), [
                    {"hash": a["hash"], "materializer": a["materializer"], "size": a["size"],
                     "files_json": json.dumps(a["files"]), "created_at": now}
                    for a in new_artifacts])
            if replace_cache:
                # The entry points at artifacts that are gone: the new execution replaces it.
                conn.execute(m.cache_entries.delete().where(
                    m.cache_entries.c.cache_key == record.cache_key))
            if cache and outputs_json:
                conn.execute(_CACHE_INSERT, {
                    "cache_key": record.cache_key, "step_path": record.step_path,
                    "outputs_json": outputs_json, "run_id": record.run_id, "created_at": now})
            conn.execute(_STEP_RUN_INSERT, {
                "run_id": record.run_id, "pipeline_name": record.pipeline_name,
                "step_name": record.step_name, "step_path": record.step_path,
                "position": record.position, "cache_key": record.cache_key,
                "code_hash": record.code_hash,
                "params_json": json.dumps(record.params, sort_keys=True),
                "inputs_json": json.dumps(record.inputs, sort_keys=True),
                "outputs_json": outputs_json, "status": record.status,
                "reason": record.reason[:500], "started_at": record.started_at,
                "duration_ms": record.duration_ms})

        self._tx(work)

    def previous_step_run(self, pipeline_name: str, step_name: str,
                          step_path: str) -> StepRunRecord | None:
        """The latest earlier run of this step (same pipeline first, else same code path).

        Only called on a cache miss, to explain it.
        """
        s = m.step_runs
        ok = s.c.status.in_(("executed", "cached"))

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
