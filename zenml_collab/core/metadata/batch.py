"""Whole-run queries: what makes a cached run cost a constant number of round trips.

A member 20-100 ms from Cloud SQL pays a round trip per statement, so a cached run must not
cost statements per step (DESIGN §12). Two queries do it:

* :func:`run_start_view`: the pipeline's registration, whether the run's environment is
  recorded, and the step runs of the pipeline's latest completed run, each with the cache
  entry its key still has (one SELECT, whatever the number of steps; a warm run registers
  nothing and ensures nothing);
* :func:`record_step_runs`: the step-run rows of many steps in one multi-row INSERT.

Both are plain functions over a :class:`MetadataStore` so the store's class stays one concern
per module; they use its one transaction helper (retries included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from zenml_collab.core.metadata import models as m
from zenml_collab.core.metadata.records import StepRunRecord

if TYPE_CHECKING:
    from zenml_collab.core.metadata.store import MetadataStore

# Rows per INSERT statement: far below MySQL's max_allowed_packet and SQLite's 32,766
# variables (15 columns a row), and one statement for any realistic pipeline.
_ROWS_PER_STATEMENT = 500


@dataclass(frozen=True)
class PriorStep:
    """A step of the previous completed run, and what the cache holds for its key now."""

    step_name: str
    step_path: str
    cache_key: str
    cached_outputs: dict[str, Any] | None  # None: the key has no cache entry (any more)


@dataclass(frozen=True)
class RunStart:
    """What a run needs to know before it starts, read in one statement."""

    pipeline_id: int | None  # None: not registered yet
    identity: str | None
    environment_known: bool
    prior: dict[str, PriorStep]


def _prior_steps(pipeline_name: str) -> Any:
    r, s, c = m.runs, m.step_runs, m.cache_entries
    latest = (sa.select(r.c.id).where(r.c.pipeline_name == pipeline_name,
                                      r.c.status == "completed")
              .order_by(r.c.started_at.desc()).limit(1).subquery("latest"))
    return (sa.select(s.c.step_name, s.c.step_path, s.c.cache_key, c.c.outputs_json)
            .select_from(s.join(latest, s.c.run_id == latest.c.id)
                         .outerjoin(c, c.c.cache_key == s.c.cache_key))
            .where(s.c.status.in_(("executed", "cached"))))


def previous_cache_view(store: MetadataStore, pipeline_name: str) -> dict[str, PriorStep]:
    """The latest completed run's steps of ``pipeline_name`` with their cache entries.

    One statement: the run is found through the ``(pipeline_name, status, started_at)`` index
    and its step runs through ``(run_id, position)``; the cache entries by primary key.
    """
    query = _prior_steps(pipeline_name)
    return _view(store._tx(lambda conn: conn.execute(query).all()))


def run_start_view(store: MetadataStore, pipeline_name: str,
                   environment_hash: str | None) -> RunStart:
    """:func:`previous_cache_view` plus the pipeline's id and identity and whether
    ``environment_hash`` is recorded, in the same single statement.

    A one-row header of scalar subqueries (primary-key and unique-name seeks) is outer-joined
    with the previous run's steps, so the row comes back even for a pipeline never run.
    Portable SQL: a derived table, scalar subqueries and ``LEFT JOIN ... ON 1 = 1``.
    """
    p, e = m.pipelines, m.environments
    header = sa.select(
        sa.select(p.c.id).where(p.c.name == pipeline_name).scalar_subquery().label("p_id"),
        sa.select(p.c.identity).where(p.c.name == pipeline_name).scalar_subquery()
        .label("p_identity"),
        sa.select(e.c.hash).where(e.c.hash == (environment_hash or "")).scalar_subquery()
        .label("env_hash")).subquery("header")
    steps = _prior_steps(pipeline_name).subquery("prior")
    query = (sa.select(header.c.p_id, header.c.p_identity, header.c.env_hash,
                       steps.c.step_name, steps.c.step_path, steps.c.cache_key,
                       steps.c.outputs_json)
             .select_from(header.outerjoin(steps, sa.literal_column("1") == 1)))
    rows = store._tx(lambda conn: conn.execute(query).all())
    first = rows[0]
    return RunStart(
        pipeline_id=None if first.p_id is None else int(first.p_id),
        identity=first.p_identity,
        environment_known=environment_hash is not None and first.env_hash is not None,
        prior=_view([row for row in rows if row.step_name is not None]))


def _view(rows: Any) -> dict[str, PriorStep]:
    view: dict[str, PriorStep] = {}
    for row in rows:
        try:
            outputs = json.loads(row.outputs_json) if row.outputs_json else None
        except ValueError:
            outputs = None  # unreadable: the step takes the per-step path, which reports it
        view[row.step_name] = PriorStep(row.step_name, row.step_path, row.cache_key,
                                        outputs if isinstance(outputs, dict) else None)
    return view


def _insert_if_absent(dialect: str) -> Any:
    # Idempotent like the per-step insert: a retry after a lost acknowledgement (autocommit
    # run connection) must not record a step twice; the (run_id, position) key catches it.
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(m.step_runs).on_conflict_do_nothing()
    from sqlalchemy.dialects import mysql

    return mysql.insert(m.step_runs).on_duplicate_key_update(position=m.step_runs.c.position)


def step_run_row(record: StepRunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id, "pipeline_name": record.pipeline_name,
        "step_name": record.step_name, "step_path": record.step_path,
        "position": record.position, "cache_key": record.cache_key,
        "code_hash": record.code_hash, "params_json": json.dumps(record.params, sort_keys=True),
        "inputs_json": json.dumps(record.inputs, sort_keys=True),
        "outputs_json": json.dumps(record.outputs, sort_keys=True) if record.outputs else None,
        "status": record.status, "reason": record.reason[:500],
        "started_at": record.started_at, "duration_ms": record.duration_ms}


def record_step_runs(store: MetadataStore, records: list[StepRunRecord]) -> None:
    """Insert the step-run rows of ``records`` (cache hits: no artifact, no cache entry).

    One multi-row INSERT statement (per 500 steps), one round trip.
    """
    if not records:
        return
    dialect = "sqlite" if store.engine.dialect.name == "sqlite" else "mysql"
    insert = _insert_if_absent(dialect)
    rows = [step_run_row(r) for r in records]

    def work(conn: sa.Connection) -> None:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            conn.execute(insert.values(rows[start:start + _ROWS_PER_STATEMENT]))

    store._tx(work)
