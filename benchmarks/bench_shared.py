"""Section 5: the same cached re-run on MySQL (MariaDB) and fake-gcs-server, with counts.

Needs the services ``scripts/bench`` starts (``COLLAB_TEST_MYSQL_URL``,
``COLLAB_TEST_GCS_ENDPOINT``); skips with a message otherwise. Per cached step it counts SQL
statements (SQLAlchemy's ``before_cursor_execute``), wire round trips to the server (every
command pymysql sends: statements, COMMIT, ROLLBACK, pings) and HTTP requests to the bucket.
Per-step figures are the difference between a cached N-step and a cached 1-step run, divided
by N - 1, so the run's own fixed statements are not charged to its steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.context import Context
from benchmarks.harness import Figure, Skip, measure, measure_process
from benchmarks.workspace import Workspace, chain_pipeline, collab_argv, expect_all


@dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0
    gcs_requests: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


@contextlib.contextmanager
def counting(engine: Any, http: Any) -> Iterator[Counts]:
    """Count statements, pymysql commands and HTTP requests made inside the block."""
    import pymysql.connections
    import sqlalchemy as sa

    counts = Counts()

    def on_statement(*_: Any) -> None:
        counts.statements += 1

    def on_response(response: Any, *_: Any, **__: Any) -> Any:
        counts.gcs_requests += 1
        counts.kinds[f"HTTP {response.request.method}"] += 1
        return response

    original = pymysql.connections.Connection._execute_command

    def execute_command(self: Any, command: int, sql: Any) -> Any:
        counts.round_trips += 1
        text = sql.decode(errors="replace") if isinstance(sql, bytes) else str(sql)
        counts.kinds[text.split(None, 1)[0].upper() if text.strip() else f"command {command}"] += 1
        return original(self, command, sql)

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    hooks = http.hooks.setdefault("response", [])
    hooks.append(on_response)
    # A measuring instrument on a third-party class for the duration of one counted run;
    # restored below whatever happens.
    pymysql.connections.Connection._execute_command = execute_command  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        pymysql.connections.Connection._execute_command = original  # type: ignore[method-assign]
        hooks.remove(on_response)
        sa.event.remove(engine, "before_cursor_execute", on_statement)


def _services() -> tuple[Any, str]:
    from sqlalchemy.engine import make_url

    url, endpoint = os.environ.get("COLLAB_TEST_MYSQL_URL"), os.environ.get("COLLAB_TEST_GCS_ENDPOINT")
    if not url or not endpoint:
        raise Skip("needs MariaDB and fake-gcs-server (COLLAB_TEST_MYSQL_URL, "
                   "COLLAB_TEST_GCS_ENDPOINT): run it through scripts/bench, which starts them, "
                   "without --no-services")
    return make_url(url), endpoint.rstrip("/")


def _create_bucket(endpoint: str, name: str) -> None:
    request = urllib.request.Request(f"{endpoint}/storage/v1/b?project=collab-bench",
                                     data=json.dumps({"name": name}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30):
        pass


def _local_yaml(url: Any, database: str, bucket: str) -> str:
    import yaml

    return yaml.safe_dump({"version": 1, "metadata": {
        "kind": "mysql", "host": url.host, "port": url.port, "username": url.username,
        "password": url.password, "database": database}, "artifacts": {"uri": f"gs://{bucket}/bench"}})


def run(ctx: Context) -> list[Figure]:
    import pymysql

    url, endpoint = _services()
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    suffix = uuid.uuid4().hex[:10]
    database, bucket = f"collab_bench_{suffix}", f"collab-bench-{suffix}"
    admin = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                            autocommit=True, connect_timeout=10)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        _create_bucket(endpoint, bucket)
        return _measure(ctx, Workspace.create(ctx.repo_dir, "shared",
                                              local_yaml=_local_yaml(url, database, bucket)))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


def _measure(ctx: Context, ws: Workspace) -> list[Figure]:
    sizes = ctx.sizes
    length = sizes.chain_length
    repo = ws.repository()
    salts = iter(range(1, 10_000))
    pending: dict[str, Any] = {}

    def new_cold() -> None:
        salt = next(salts)
        pending["p"] = chain_pipeline(ws, f"shared-cold-{salt}", length, salt=salt)

    def run_cold() -> None:
        expect_all(pending["p"].run(repo), "executed")

    cold = measure("mysql_gcs_cold", f"{length} trivial steps, cold, MySQL + GCS (in-process)",
                   run_cold, setup=new_cold, repeat=sizes.repeat_cold, warmup=1, steps=length)
    cold.extra["per_step_s"] = cold.median / length

    for n in (1, length):  # the 1-step pipeline's step is the first of the N-step one
        chain_pipeline(ws, f"shared-{n}", n).run(repo)
    ws.commit_configs()

    def cached_run(n: int) -> None:
        expect_all(chain_pipeline(ws, f"shared-{n}", n).run(repo), "cached")

    cached = measure("mysql_gcs_cached",
                     f"{length} trivial steps, cached re-run, MySQL + GCS (in-process)",
                     lambda: cached_run(length), repeat=sizes.repeat_inproc, warmup=1, steps=length)
    cached.extra["per_step_s"] = cached.median / length

    http = repo.artifacts.client._http
    with counting(repo.metadata.engine, http) as one:
        cached_run(1)
    with counting(repo.metadata.engine, http) as many:
        cached_run(length)
    steps = max(1, length - 1)
    cached.extra.update({
        "statements_per_step": (many.statements - one.statements) / steps,
        "round_trips_per_step": (many.round_trips - one.round_trips) / steps,
        "gcs_requests_per_step": (many.gcs_requests - one.gcs_requests) / steps,
        "statements_per_run": many.statements, "round_trips_per_run": many.round_trips,
        "gcs_requests_per_run": many.gcs_requests,
        "wire_per_step": {k: (many.kinds[k] - one.kinds[k]) / steps
                          for k in sorted(many.kinds)},
    })
    argv = [*collab_argv(), "run", f"pipelines/shared-{length}.yaml"]
    whole = measure_process("mysql_gcs_cached_process",
                            f"`collab run` of the cached {length}-step pipeline, MySQL + GCS "
                            "(process)", argv, cwd=ws.root, env=ws.process_env(),
                            repeat=sizes.repeat_process,
                            check=lambda s: None if "0 executed" in s.stdout
                            else f"not fully cached: {s.stdout[-300:]}", steps=length)
    return [cold, cached, whole]
