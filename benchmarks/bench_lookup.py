"""Section 4: cache lookup time with 10, 1,000 and 100,000 prior runs in the metadata store.

The store is filled by bulk-inserting rows with SQLAlchemy Core into the real schema (runs,
their step runs and cache entries, shaped like what the runner writes), not by running
100,000 pipelines. Three figures per level: a cache-hit lookup of a random existing key, the
"why did it miss" query of a miss, and a whole cached re-run of a 3-step pipeline.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Figure, measure
from benchmarks.workspace import Workspace, chain_pipeline, expect_all

STEPS_PER_RUN = 3
_BATCH = 20_000


class StoreFiller:
    """Appends synthetic completed runs of one pipeline to a metadata store."""

    def __init__(self, engine: Any, pipeline_name: str, step_path: str) -> None:
        from zenml_collab.core.metadata import models as m

        self.m = m
        self.engine = engine
        self.pipeline_name = pipeline_name
        self.step_path = step_path
        with engine.connect() as conn:
            self.pipeline_id = conn.execute(
                m.pipelines.select().with_only_columns(m.pipelines.c.id)
                .where(m.pipelines.c.name == pipeline_name)).scalar_one()
        self.count = 0
        self.keys: list[str] = []
        self._t0 = datetime(2024, 1, 1)

    def fill_to(self, total: int) -> None:
        runs: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        while self.count < total:
            runs_row, step_rows, entry_rows = self._run_rows(self.count)
            runs.append(runs_row)
            steps.extend(step_rows)
            entries.extend(entry_rows)
            self.count += 1
            if len(steps) >= _BATCH:
                self._flush(runs, steps, entries)
        self._flush(runs, steps, entries)

    def _run_rows(self, n: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        run_id = uuid.uuid4().hex
        started = self._t0 + timedelta(seconds=n)
        run = {"id": run_id, "pipeline_id": self.pipeline_id, "pipeline_name": self.pipeline_name,
               "status": "completed", "started_at": started,
               "finished_at": started + timedelta(seconds=1), "git_sha": "0" * 40,
               "git_dirty": False, "user": "bench@example.com", "hostname": "bench",
               "environment_hash": None, "error": None}
        step_rows, entry_rows = [], []
        for pos in range(STEPS_PER_RUN):
            key = hashlib.sha256(f"{run_id}:{pos}".encode()).hexdigest()
            outputs = json.dumps({"output": {"hash": key[:32], "materializer": "json",
                                             "files": ["value.json"], "size": 2}})
            step_rows.append({
                "run_id": run_id, "pipeline_name": self.pipeline_name, "step_name": f"s{pos:02d}",
                "step_path": self.step_path, "position": pos, "cache_key": key,
                "code_hash": "c" * 64, "params_json": json.dumps({"k": pos, "salt": n}),
                "inputs_json": "{}", "outputs_json": outputs, "status": "executed",
                "reason": "no previous run", "started_at": started, "duration_ms": 1.0})
            entry_rows.append({"cache_key": key, "step_path": self.step_path,
                               "outputs_json": outputs, "run_id": run_id, "created_at": started})
            self.keys.append(key)
        return run, step_rows, entry_rows

    def _flush(self, runs: list[dict[str, Any]], steps: list[dict[str, Any]],
               entries: list[dict[str, Any]]) -> None:
        if not runs:
            return
        m = self.m
        with self.engine.begin() as conn:
            conn.execute(m.runs.insert(), runs)
            conn.execute(m.step_runs.insert(), steps)
            conn.execute(m.cache_entries.insert(), entries)
        runs.clear()
        steps.clear()
        entries.clear()


def run(ctx: Context) -> list[Figure]:
    import time

    sizes = ctx.sizes
    ws = Workspace.create(ctx.repo_dir, "lookup")
    repo = ws.repository()
    expect_all(chain_pipeline(ws, "lookup", STEPS_PER_RUN).run(repo), "executed")
    store = repo.metadata
    filler = StoreFiller(store.engine, "lookup", "bench_steps:inc")
    rng = random.Random(7)
    figures: list[Figure] = []
    picked: dict[str, str] = {}

    for level in sizes.lookup_levels:
        t0 = time.perf_counter()
        filler.fill_to(level)
        ctx.say(f"store filled to {level} prior runs ({time.perf_counter() - t0:.1f} s)")

        def pick() -> None:
            picked["key"] = rng.choice(filler.keys)

        def lookup() -> None:
            if store.cached_outputs(picked["key"]) is None:
                raise RuntimeError("a key just inserted was not found")

        figures.append(measure(f"lookup_hit_{level}", f"cache lookup, {level:,} prior runs",
                               lookup, setup=pick, repeat=sizes.lookup_samples, warmup=5,
                               prior_runs=level))

        def explain() -> None:
            store.previous_step_run("lookup", "s01", "bench_steps:inc")

        figures.append(measure(f"lookup_explain_{level}",
                               f"miss explanation query, {level:,} prior runs", explain,
                               repeat=sizes.lookup_samples, warmup=5, prior_runs=level))

        def rerun() -> None:
            expect_all(chain_pipeline(ws, "lookup", STEPS_PER_RUN).run(repo), "cached")

        figures.append(measure(f"lookup_rerun_{level}",
                               f"cached {STEPS_PER_RUN}-step re-run, {level:,} prior runs",
                               rerun, repeat=sizes.repeat_inproc, warmup=1, prior_runs=level))
    return figures
