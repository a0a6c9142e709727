"""Whole-run queries: what makes a run cost a constant number of round trips, plus one per
executed step.

A member 20-100 ms from Cloud SQL pays a round trip per statement, so a run must not cost
statements per cached step, nor several per executed one (DESIGN §12):

* :func:`run_start_view`: the pipeline's registration, whether the run's environment is
  recorded, and the step runs of the pipeline's latest completed run, each with the cache
  entry its key still has (one SELECT, whatever the number of steps; a warm run registers
  nothing and ensures nothing);
* :func:`lookup_step`: an executing step's cache entry and the run that explains its miss
  (one SELECT);
* :func:`record_steps`: the records of many steps (artifacts, cache entries, step runs) in at
  most four multi-row statements.

They are plain functions over a :class:`MetadataStore` so the store's class stays one concern
per module; they use its one transaction helper (retries included).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from zenml_collab.core.metadata import models as m
from zenml_collab.core.metadata.records import StepStatus, _step_record, outputs_object, utcnow
from zenml_collab.core.metadata.runpath import (  # re-exported: the names callers know
    Pending,
    PriorStep,
    RunStart,
    StepLookup,
    check_record,
    pending_rows,
    prior_view,
    run_start,
    step_run_row,
)

if TYPE_CHECKING:
    from zenml_collab.core.metadata.store import MetadataStore

__all__ = ["Pending", "PriorStep", "RunStart", "StepLookup", "check_record", "lookup_step",
           "prior_view", "record_steps", "run_start_view", "step_run_row"]

# Rows per INSERT statement: far below MySQL's max_allowed_packet and SQLite's 32,766
# variables (15 columns a row), and one statement for any realistic pipeline.
_ROWS_PER_STATEMENT = 500


def run_start_view(store: MetadataStore, pipeline_name: str,
                   environment_hash: str | None) -> RunStart:
    """The latest completed run's steps of ``pipeline_name`` with their cache entries, the
    pipeline's id and identity, and whether ``environment_hash`` is recorded: one statement.

    The run is found through the ``(pipeline_name, status, started_at)`` index and its step
    runs through ``(run_id, position)``; the cache entries by primary key.

    A one-row header of scalar subqueries (primary-key and unique-name seeks) is outer-joined
    with the previous run's steps, so the row comes back even for a pipeline never run.
    Portable SQL: a derived table, scalar subqueries and ``LEFT JOIN ... ON 1 = 1``.
    """
    query = _start_statement()  # built once per process
    params = {"pipeline": pipeline_name, "env": environment_hash or ""}
    return run_start(store._tx(lambda conn: conn.execute(query, params).all()),
                     environment_hash)


def _insert_if_absent(dialect: str, table: sa.Table | None = None) -> Any:
    # Idempotent like the per-step insert: a retry after a lost acknowledgement (autocommit
    # run connection) must not record a step twice; the (run_id, position) key catches it.
    # Content-addressed rows (artifacts, cache entries) keep the first writer's row.
    table = m.step_runs if table is None else table
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import mysql

    key = table.c.position if table is m.step_runs else next(iter(table.primary_key.columns))
    return mysql.insert(table).on_duplicate_key_update({key.name: key})


def record_steps(store: MetadataStore, pending: list[Pending]) -> None:
    """Write ``pending`` step runs: at most four statements whatever their number.

    In order: the new artifacts' rows, the stale cache entries' removal, the new cache
    entries, the step runs; each a multi-row insert-if-absent (idempotent, so the run
    connection's retry after a lost connection is safe). On the autocommit run connection
    each statement commits on its own; every prefix of the sequence is a consistent store
    (an artifact or cache entry without its step run is what ``remember_outputs`` writes).
    """
    if not pending:
        return
    dialect = "sqlite" if store.engine.dialect.name == "sqlite" else "mysql"
    rows = pending_rows(pending, utcnow())

    def work(conn: sa.Connection) -> None:
        _insert_rows(conn, dialect, m.artifacts, rows.artifacts)
        if rows.stale_keys:
            conn.execute(m.cache_entries.delete().where(
                m.cache_entries.c.cache_key.in_(rows.stale_keys)))
        _insert_rows(conn, dialect, m.cache_entries, rows.cache_entries)
        _insert_rows(conn, dialect, m.step_runs, rows.step_runs)

    store._tx(work)


def _insert_rows(conn: sa.Connection, dialect: str, table: sa.Table,
                 rows: list[dict[str, Any]]) -> None:
    insert = _insert_if_absent(dialect, table)
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        conn.execute(insert.values(rows[start:start + _ROWS_PER_STATEMENT]))


def lookup_step(store: MetadataStore, *, cache_key: str, pipeline_name: str, step_name: str,
                step_path: str) -> StepLookup:
    """:meth:`MetadataStore.cached_outputs` and :meth:`MetadataStore.previous_step_run` in one
    statement (one round trip instead of two or three for a step that executes).

    The key's cache entry is a one-row header (a primary-key seek) outer-joined with the two
    candidates for the previous run: this step in this pipeline, else the same code path
    (each the latest by id through its index); the first that exists wins, as before.
    """
    query = _lookup_statement()  # built once: per step it was most of a step's CPU time
    params = {"key": cache_key, "pipeline": pipeline_name, "step": step_name,
              "path": step_path}
    rows = store._tx(lambda conn: conn.execute(query, params).all())
    hit = rows[0].hit_outputs_json
    found = sorted((r for r in rows if r.run_id is not None), key=lambda r: r.preference)
    return StepLookup(None if hit is None else outputs_object(hit, cache_key),
                      _step_record(found[0]) if found else None)


@functools.cache
def _lookup_statement() -> Any:
    s, c = m.step_runs, m.cache_entries
    ok = s.c.status.in_((StepStatus.EXECUTED.value, StepStatus.CACHED.value))
    by_name = (sa.select(s, sa.literal(0).label("preference"))
               .where(s.c.pipeline_name == sa.bindparam("pipeline"),
                      s.c.step_name == sa.bindparam("step"), ok)
               .order_by(s.c.id.desc()).limit(1).subquery("by_name"))
    by_path = (sa.select(s, sa.literal(1).label("preference"))
               .where(s.c.step_path == sa.bindparam("path"), ok)
               .order_by(s.c.id.desc()).limit(1).subquery("by_path"))
    previous = sa.union_all(sa.select(by_name), sa.select(by_path)).subquery("previous")
    header = sa.select(sa.select(c.c.outputs_json).where(c.c.cache_key == sa.bindparam("key"))
                       .scalar_subquery().label("hit_outputs_json")).subquery("header")
    return (sa.select(header.c.hit_outputs_json, previous)
            .select_from(header.outerjoin(previous, sa.literal_column("1") == 1)))


@functools.cache
def _start_statement() -> Any:
    p, e, r, s, c = m.pipelines, m.environments, m.runs, m.step_runs, m.cache_entries
    name: Any = sa.bindparam("pipeline", type_=sa.String())
    header = sa.select(
        sa.select(p.c.id).where(p.c.name == name).scalar_subquery().label("p_id"),
        sa.select(p.c.identity).where(p.c.name == name).scalar_subquery().label("p_identity"),
        sa.select(e.c.hash).where(e.c.hash == sa.bindparam("env")).scalar_subquery()
        .label("env_hash")).subquery("header")
    latest = (sa.select(r.c.id).where(r.c.pipeline_name == name, r.c.status == "completed")
              .order_by(r.c.started_at.desc()).limit(1).subquery("latest"))
    steps = (sa.select(s.c.step_name, s.c.step_path, s.c.cache_key, c.c.outputs_json)
             .select_from(s.join(latest, s.c.run_id == latest.c.id)
                          .outerjoin(c, c.c.cache_key == s.c.cache_key))
             .where(s.c.status.in_(("executed", "cached")))).subquery("prior")
    return (sa.select(header.c.p_id, header.c.p_identity, header.c.env_hash,
                      steps.c.step_name, steps.c.step_path, steps.c.cache_key,
                      steps.c.outputs_json)
            .select_from(header.outerjoin(steps, sa.literal_column("1") == 1)))
