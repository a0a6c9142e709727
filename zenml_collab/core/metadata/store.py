"""The metadata store: pipelines, runs, step runs, the cache index, artifacts, environments.

Every write is one short transaction through :meth:`MetadataStore._tx`, which commits or rolls
back in one place and retries a transaction that lost its connection (a proxy or server
restart). A cached step costs exactly two statements: the cache lookup (a primary-key seek) and
the insert of its step-run row.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

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
from zenml_collab.errors import (
    ConnectivityError,
    MetadataStoreError,
    PipelineError,
    SchemaOutOfDateError,
)

HEAD_REVISION = "0003"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
T = TypeVar("T")


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


class MetadataStore:
    """Typed access to the metadata database behind one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, *, description: str = "") -> None:
        self.engine = engine
        self.description = description or engine.url.render_as_string(hide_password=True)
        self._local = threading.local()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def run_session(self) -> Iterator[None]:
        """Hold one autocommit connection for the duration of a run (this thread only).

        Per step, this saves the pool's checkout ping, the rollback on return and the COMMIT
        round trip: on Cloud SQL, a cached step is two round trips (lookup, insert).
        Every statement of the hot path stands on its own (INSERT IGNORE, content-addressed
        rows), so none needs a multi-statement transaction.
        """
        if getattr(self._local, "held", None) is not None:
            yield
            return
        self._local.held = self._open_held()
        self._local.reopen = False
        try:
            yield
        finally:
            held, self._local.held = self._local.held, None
            self._local.reopen = False
            held.close()

    def _open_held(self) -> sa.Connection:
        try:
            return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.OperationalError as exc:
            raise self._connectivity_error(exc) from None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        held = getattr(self._local, "held", None)
        if held is not None:
            yield held
            return
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise self._connectivity_error(exc) from None

    def _connectivity_error(self, exc: sa.exc.DBAPIError) -> ConnectivityError:
        return ConnectivityError(
            f"cannot reach the metadata store {self.description}: {exc.orig}",
            "check that the database (or the Cloud SQL proxy: `collab proxy status`) is running; "
            "`collab doctor` diagnoses the rest",
        )

    def _tx(self, work: Callable[[sa.Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in one transaction; retry it if the connection dropped.

        A deadlock or lock-wait timeout between members writing at once is retried too: the
        server rolled the transaction back, so running it again is safe. In a run session
        (autocommit) each hot-path statement is idempotent or the last one, so re-running the
        work after a lost connection is safe as well. A server that is restarting (a proxy or
        Cloud SQL maintenance) gets the whole backoff, about 10 s, before we give up.
        """
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                if getattr(self._local, "reopen", False):
                    self._local.held = self.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")
                    self._local.reopen = False
                held = getattr(self._local, "held", None)
                if held is not None:
                    return work(held)
                with self.engine.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                conflict = _is_lock_conflict(exc)
                transient = exc.connection_invalidated or _is_disconnect(exc) or conflict
                if not transient:
                    raise
                held = getattr(self._local, "held", None)
                if held is not None and not conflict:
                    # Drop the dead connection; the next attempt opens a fresh one.
                    held.invalidate()
                    self._local.reopen = True
                if attempt == attempts:
                    if conflict:
                        raise MetadataStoreError(
                            f"the metadata store {self.description} kept reporting lock "
                            f"conflicts: {exc.orig}", "run the pipeline again") from None
                    raise self._connectivity_error(exc) from None
                time.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    # -- schema -----------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision, or ``None`` for an empty database."""
        with self._connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                if sa.inspect(conn).get_table_names():
                    raise MetadataStoreError(
                        f"{self.description} holds tables that are not a zenml-collab store",
                        "point the metadata store at an empty database of its own",
                    )
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def check_schema(self, *, create_if_empty: bool = True) -> None:
        """Fail clearly on a schema this version cannot use; initialise an empty database.

        An existing schema is never migrated here: that is `collab db upgrade`'s job.
        """
        current = self.revision()
        if current is None and create_if_empty:
            self.upgrade()
            return
        if current != HEAD_REVISION:
            raise SchemaOutOfDateError(
                f"the metadata store {self.description} is at schema revision {current}, "
                f"this zenml-collab needs {HEAD_REVISION}",
                "run `collab db upgrade` (back up a shared store first)"
                if current is None or current < HEAD_REVISION
                else "upgrade zenml-collab: a teammate's newer version migrated the store",
            )

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Migrate to ``revision`` (default: head); returns (before, after)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._migration_lock():
            # Read under the lock: a teammate may have just migrated (MySQL DDL is not
            # transactional, so two members creating the same tables would collide).
            before = self.revision()
            if before is not None and before > HEAD_REVISION:
                raise SchemaOutOfDateError(
                    f"the metadata store {self.description} is at schema revision {before}, "
                    f"newer than this zenml-collab knows ({HEAD_REVISION})",
                    "upgrade zenml-collab: a teammate's newer version migrated the store")
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        return before, HEAD_REVISION if revision == "head" else revision

    @contextmanager
    def _migration_lock(self, timeout_s: int = 120) -> Iterator[None]:
        """On MySQL, a server-wide named lock so only one member migrates at a time."""
        if self.engine.dialect.name not in ("mysql", "mariadb"):
            yield
            return
        name = f"zenml_collab_migrate:{self.engine.url.database}"[:64]
        with self._connect() as conn:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"),
                               {"n": name, "t": timeout_s}).scalar()
            if got != 1:
                raise MetadataStoreError(
                    f"another member is migrating {self.description} (waited {timeout_s} s)",
                    "wait for it to finish, then run the command again")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})

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


def _error_code(exc: sa.exc.DBAPIError) -> Any:
    args = getattr(exc.orig, "args", None)
    return args[0] if args else None


def _is_disconnect(exc: sa.exc.DBAPIError) -> bool:
    # pymysql: 2003 can't connect, 2006 server gone away, 2013 lost connection during query;
    # server: 1053 shutdown in progress, 1927 connection killed (MariaDB), 4031 idle timeout.
    return isinstance(exc, sa.exc.OperationalError) and _error_code(exc) in (
        2003, 2006, 2013, 1053, 1927, 4031)


def _is_lock_conflict(exc: sa.exc.DBAPIError) -> bool:
    # MySQL 1213 deadlock, 1205 lock wait timeout (the transaction was rolled back).
    return _error_code(exc) in (1205, 1213)
