"""Section "compute" (issue 17): what a backend costs.

* ``compute_cached_inproc`` / ``compute_cached_vertex``: the same fully cached N-step
  pipeline on MariaDB + fake-gcs-server, once with every step in-process and once with every
  step on ``vertex`` (the fake Vertex AI running, its endpoints set): time, SQL statements,
  wire round trips and GCS requests of one run, and every request the fake Vertex/IAM API saw.
  The launcher decides the cache locally with the runner's functions, so the vertex run should
  launch nothing and cost the same statements.
* ``compute_docker_start`` vs ``compute_inproc_start``: a cold 1-step pipeline whose trivial
  step runs in a container on dockerd against in-process (SQLite + local folder): the start
  overhead of a container (interpreter, imports, store opening, source archive). Needs dockerd
  (``DOCKER_HOST``, which ``scripts/bench`` starts with the services) and builds the offline
  step image once (cached between runs).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_shared import _create_bucket, _local_yaml, _services, counting
from benchmarks.context import Context
from benchmarks.harness import Figure, Skip, measure
from benchmarks.workspace import Workspace, chain_pipeline, expect_all


def run(ctx: Context) -> list[Figure]:
    figures = _cached(ctx)
    try:
        figures += _docker_start(ctx)
    except Skip as skip:
        print(f"  compute: docker start overhead skipped: {skip}")
    return figures


def chain_on(ws: Workspace, name: str, length: int, backend: str | None, *,
             salt: int = 0) -> Any:
    """:func:`chain_pipeline` with every step on ``backend`` (not in identity or cache key)."""
    from zenml_collab.core.pipeline import Pipeline

    inc = ws.steps().inc
    pipeline = Pipeline(name)
    prev: str | None = None
    for i in range(length):
        prev = pipeline.add(inc, name=f"s{i:02d}", params={"k": i, "salt": salt},
                            inputs={"x": prev} if prev else None, backend=backend)
    return pipeline


def _cached(ctx: Context) -> list[Figure]:
    import pymysql

    from zenml_collab.testing.fake_gcp import FakeGCP

    url, endpoint = _services()
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    suffix = uuid.uuid4().hex[:10]
    database, bucket = f"collab_bench_{suffix}", f"collab-bench-{suffix}"
    admin = pymysql.connect(host=url.host, port=url.port, user=url.username,
                            password=url.password, autocommit=True, connect_timeout=10)
    fake = FakeGCP().start()
    saved = {k: os.environ.get(k) for k in fake.env if k != "STORAGE_EMULATOR_HOST"}
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        _create_bucket(endpoint, bucket)
        for name in saved:
            os.environ[name] = fake.env[name]
        fake.add_project("bench-proj")
        ws = Workspace.create(ctx.repo_dir, "compute", local_yaml=_local_yaml(url, database, bucket))
        return _measure_cached(ctx, ws, fake)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        fake.stop()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


def _measure_cached(ctx: Context, ws: Workspace, fake: Any) -> list[Figure]:
    length = ctx.sizes.chain_length
    name = f"compute-{length}"
    repo = ws.repository()
    os.environ["COLLAB_VERTEX_ALLOW_DIRECT_DB"] = "1"
    expect_all(chain_pipeline(ws, name, length).run(repo), "executed")  # fills the cache
    ws.commit_configs()

    def cached(backend: str | None) -> None:
        expect_all(chain_on(ws, name, length, backend).run(repo), "cached")

    figures = []
    http = repo.artifacts.client._http
    for backend, fig_name in ((None, "compute_cached_inproc"), ("vertex", "compute_cached_vertex")):
        where = "on vertex" if backend else "in-process"
        fig = measure(fig_name, f"{length} trivial steps {where}, fully cached re-run, "
                      "MySQL + GCS", lambda b=backend: cached(b), repeat=ctx.sizes.repeat_inproc,
                      warmup=1, steps=length)
        before = len(fake.requests)
        with counting(repo.metadata.engine, http) as counts:
            cached(backend)
        fig.extra.update({
            "statements_per_run": counts.statements, "round_trips_per_run": counts.round_trips,
            "gcs_requests_per_run": counts.gcs_requests,
            "google_api_requests": len(fake.requests) - before,
            "jobs_created": sum(1 for r in fake.requests
                                if r.method_id == "aiplatform.projects.locations.customJobs.create"),
        })
        figures.append(fig)
    inproc, vertex = figures
    vertex.extra["vs_inproc_time"] = vertex.median / inproc.median
    vertex.extra["extra_statements"] = (vertex.extra["statements_per_run"]
                                        - inproc.extra["statements_per_run"])
    return figures


def _docker_start(ctx: Context) -> list[Figure]:
    if not os.environ.get("DOCKER_HOST"):
        raise Skip("no dockerd (DOCKER_HOST): run through scripts/bench with its services")
    import docker

    from zenml_collab.core.backends.image import build_image
    from zenml_collab.testing.base_image import ensure_base_image

    client = docker.from_env(timeout=300)
    try:
        client.ping()
        empty = ctx.workdir / "empty-context"
        empty.mkdir(exist_ok=True)
        image = build_image(client, Path(empty), tag="collab-bench/steps:dev",
                            base=ensure_base_image(client), no_index=True)
    except Exception as exc:  # no daemon, no offline base image: not measurable here
        raise Skip(f"docker not usable: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    os.environ["COLLAB_STEP_IMAGE"] = image.tag
    ws = Workspace.create(ctx.repo_dir, "compute-docker")
    repo = ws.repository()
    salts = iter(range(1, 100_000))
    pending: dict[str, Any] = {}
    repeat = max(2, min(ctx.sizes.repeat_cold, 5))
    figures = []
    for backend, fig_name in ((None, "compute_inproc_start"), ("docker", "compute_docker_start")):
        def setup(b: str | None = backend) -> None:
            salt = next(salts)
            pending["p"] = chain_on(ws, f"start-{b}-{salt}", 1, b, salt=salt)

        def one() -> None:
            expect_all(pending["p"].run(repo), "executed")

        where = "in a docker container" if backend else "in-process"
        figures.append(measure(fig_name, f"1 trivial step, cold, {where} (SQLite + folder)",
                               one, setup=setup, repeat=repeat, warmup=1, steps=1))
    inproc, in_docker = figures
    in_docker.extra["overhead_s"] = in_docker.median - inproc.median
    return figures
