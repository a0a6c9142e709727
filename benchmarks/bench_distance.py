"""Section `distance`: the shared stores 0, 25 and 50 ms away (one way), with round-trip counts.

MariaDB and fake-gcs-server (the services ``scripts/bench`` starts) each sit behind a
:class:`~zenml_collab.testing.latency.LatencyRelay`; the 20-step chain and the guide's 5-step
TrainingPipeline run cached and cold at each distance. Per run it reports wall time, SQL
statements, database round trips (pymysql commands), GCS requests and, from the relays, the
*sequential* round trips (``waves``: overlapping requests count once) of each store and of the
two together. With ``--vs zenml`` the same chain runs on ZenML with its SQL store on the same
MariaDB through the same relay (``benchmarks/zenml_side.py distance``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.bench_shared import _create_bucket, _local_yaml, _services, counting
from benchmarks.context import Context
from benchmarks.harness import Figure
from benchmarks.workspace import Workspace, chain_pipeline, expect_all
from zenml_collab.testing.latency import LatencyRelay, WaveClock

DELAYS_MS = (0, 25, 50)
DATA = Path(__file__).resolve().parent.parent / "zenml_collab" / "data" / "diabetes.csv"


class Distance:
    """The two relays (database, bucket) and one clock merging their sequential waves."""

    def __init__(self, db: LatencyRelay, gcs: LatencyRelay, clock: WaveClock) -> None:
        self.db, self.gcs, self.clock = db, gcs, clock

    def set_delay(self, delay_ms: float) -> None:
        self.db.set_delay(delay_ms)
        self.gcs.set_delay(delay_ms)

    def reset(self) -> None:
        self.db.reset()
        self.gcs.reset()
        self.clock.reset()

    def counts(self) -> dict[str, int]:
        db, gcs = self.db.stats, self.gcs.stats
        return {"db_turns": db.turns, "db_waves": db.waves, "gcs_turns": gcs.turns,
                "gcs_waves": gcs.waves, "sequential_round_trips": self.clock.waves,
                "connections": db.connections + gcs.connections}


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(ctx: Context) -> list[Figure]:
    import pymysql

    url, endpoint = _services()
    suffix = uuid.uuid4().hex[:10]
    database, bucket = f"collab_dist_{suffix}", f"collab-dist-{suffix}"
    admin = pymysql.connect(host=url.host, port=url.port, user=url.username,
                            password=url.password, autocommit=True, connect_timeout=10)
    gcs = urlsplit(endpoint)
    clock = WaveClock()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        _create_bucket(endpoint, bucket)
        with (LatencyRelay((url.host, url.port), clock=clock) as db_relay,
              LatencyRelay((gcs.hostname or "127.0.0.1", gcs.port or 80), clock=clock)
              as gcs_relay,
              _env(STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{gcs_relay.port}")):
            dist = Distance(db_relay, gcs_relay, clock)
            relayed = url.set(host="127.0.0.1", port=db_relay.port)
            ws = Workspace.create(ctx.repo_dir, "distance",
                                  local_yaml=_local_yaml(relayed, database, bucket))
            (ws.root / "data").mkdir()
            shutil.copy(DATA, ws.root / "data" / "diabetes.csv")
            with contextlib.chdir(ws.root):  # datasource paths are relative to the repo root
                figures = _measure(ctx, ws, dist)
            if ctx.vs_zenml:
                figures += _zenml(ctx, dist, url)
            return figures
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute("DROP DATABASE IF EXISTS `zenml_distance`")
        admin.close()


def _repeats(ctx: Context, delay: int, cold: bool) -> int:
    if ctx.preset == "tiny":
        return 1
    if delay == 0:
        return ctx.sizes.repeat_cold if cold else ctx.sizes.repeat_inproc
    return 2 if ctx.preset == "quick" or cold else 3


def _timed_runs(name: str, label: str, *, dist: Distance, repo: Any, repeat: int,
                build: Callable[[], Any], status: str, steps: int, **extra: Any) -> Figure:
    """Time ``repeat`` runs of a freshly built pipeline; counts are those of the last run."""
    wall: list[float] = []
    cpu: list[float] = []
    counted: dict[str, Any] = {}
    http = repo.artifacts.client._http
    for _ in range(repeat):
        pipeline = build()
        dist.reset()
        with counting(repo.metadata.engine, http) as c:
            c0, t0 = time.process_time(), time.perf_counter()
            expect_all(pipeline.run(repo), status)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        counted = {"statements": c.statements, "db_round_trips": c.round_trips,
                   "gcs_requests": c.gcs_requests, **dist.counts()}
    counted["per_step_s"] = statistics.median(wall) / steps
    counted["sequential_round_trips_per_step"] = counted["sequential_round_trips"] / steps
    delay_ms = extra.get("delay_ms", 0)
    if delay_ms:
        # The wall time in round trips: the relays' waves merge everything that overlaps,
        # so with uploads in flight behind the run they undercount what the member waits.
        counted["wall_round_trips"] = statistics.median(wall) / (2 * delay_ms / 1000)
    return Figure(name, label, wall, cpu, extra={"steps": steps, **counted, **extra})


def _training(name: str, csv: str, split_seed: int = 42) -> Any:
    from zenml_collab import (
        CSVDatasource,
        Evaluator,
        RandomSplit,
        SklearnTrainer,
        StandardPreprocesser,
        TrainingPipeline,
    )

    p = TrainingPipeline(name=name)
    p.add_datasource(CSVDatasource(name="Pima Indians Diabetes", path=csv))
    p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=split_seed))
    p.add_preprocesser(StandardPreprocesser(
        features=["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin",
                  "bmi", "diabetes_pedigree", "age", "clinic"], labels=["has_diabetes"]))
    p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=1000))
    p.add_evaluator(Evaluator(metrics=["accuracy", "f1"], slices=[["clinic"]]))
    return p


def _measure(ctx: Context, ws: Workspace, dist: Distance) -> list[Figure]:
    length = ctx.sizes.chain_length
    repo = ws.repository()
    salts = iter(range(1, 100_000))
    # The cached baselines, recorded on loopback.
    chain_pipeline(ws, "dist-chain", length).run(repo)
    _training("dist-train", "data/diabetes.csv").run(repo)
    ws.commit_configs()

    def cold_chain() -> Any:
        salt = next(salts)
        return chain_pipeline(ws, f"dist-chain-cold-{salt}", length, salt=salt)

    def fresh_chain() -> Any:
        # New keys and new content: the first step starts from a new value, so every output
        # is a new artifact (the cold chain above re-creates the values 1..20, stored once).
        from zenml_collab.core.pipeline import Pipeline

        salt = next(salts)
        inc = ws.steps().inc
        pipeline = Pipeline(f"dist-chain-fresh-{salt}")
        prev: str | None = None
        for i in range(length):
            prev = pipeline.add(inc, name=f"s{i:02d}",
                                params={"k": i, "salt": salt} if prev else
                                {"k": i, "salt": salt, "x": 1_000_000 * salt},
                                inputs={"x": prev} if prev else None)
        return pipeline

    def cold_training() -> Any:
        salt = next(salts)
        # A new source and a new split: every step of the pipeline misses.
        csv = f"data/diabetes-{salt}.csv"
        shutil.copy(ws.root / "data" / "diabetes.csv", ws.root / csv)
        return _training(f"dist-train-cold-{salt}", csv, split_seed=1000 + salt)

    figures: list[Figure] = []
    for delay in DELAYS_MS:
        dist.set_delay(delay)
        ctx.say(f"distance {delay} ms one way")
        at = f"{delay} ms one way"
        figures.append(_timed_runs(
            f"distance_chain_cached_{delay}ms", f"{length}-step chain, cached, {at}",
            dist=dist, repo=repo, repeat=_repeats(ctx, delay, False), status="cached",
            steps=length, delay_ms=delay,
            build=lambda: chain_pipeline(ws, "dist-chain", length)))
        figures.append(_timed_runs(
            f"distance_chain_cold_{delay}ms", f"{length}-step chain, cold, {at}",
            dist=dist, repo=repo, repeat=_repeats(ctx, delay, True), status="executed",
            steps=length, delay_ms=delay, build=cold_chain))
        figures.append(_timed_runs(
            f"distance_chain_fresh_{delay}ms",
            f"{length}-step chain, cold, new artifacts, {at}",
            dist=dist, repo=repo, repeat=_repeats(ctx, delay, True), status="executed",
            steps=length, delay_ms=delay, build=fresh_chain))
        figures.append(_timed_runs(
            f"distance_training_cached_{delay}ms", f"guide's 5-step TrainingPipeline, cached, {at}",
            dist=dist, repo=repo, repeat=_repeats(ctx, delay, False), status="cached", steps=5,
            delay_ms=delay, build=lambda: _training("dist-train", "data/diabetes.csv")))
        figures.append(_timed_runs(
            f"distance_training_cold_{delay}ms", f"guide's 5-step TrainingPipeline, cold, {at}",
            dist=dist, repo=repo, repeat=1 if delay else _repeats(ctx, delay, True),
            status="executed", steps=5, delay_ms=delay, build=cold_training))
    dist.set_delay(0)
    return figures


def _zenml(ctx: Context, dist: Distance, url: Any) -> list[Figure]:
    """ZenML 0.98's chain with its SQL store on the same MariaDB, through the same relay."""
    from benchmarks.zenml_distance import run_zenml_distance

    return run_zenml_distance(ctx, dist, url, DELAYS_MS)
