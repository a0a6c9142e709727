"""``--vs zenml`` for the distance section: ZenML's chain on the same MariaDB, same relay.

ZenML's SQL store is pointed at a database of the benchmark's MariaDB through the database
relay (``ZENML_STORE_URL``); its artifact store stays local (ZenML's default), so only its
metadata traffic is at a distance, which if anything flatters ZenML.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from typing import TYPE_CHECKING, Any

from benchmarks.bench_zenml import ensure_venv, zenml_env
from benchmarks.context import Context
from benchmarks.harness import Figure, Skip

if TYPE_CHECKING:
    from benchmarks.bench_distance import Distance

SIDE = "zenml_distance_side.py"
DATABASE = "zenml_distance"


def run_zenml_distance(ctx: Context, dist: Distance, url: Any,
                       delays: tuple[int, ...]) -> list[Figure]:
    from pathlib import Path

    python = ensure_venv(ctx)
    workdir = ctx.workdir / "zenml-distance"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name(SIDE), workdir / SIDE)
    env = zenml_env(workdir)
    import pymysql

    admin = pymysql.connect(host=url.host, port=url.port, user=url.username,
                            password=url.password, autocommit=True, connect_timeout=10)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` CHARACTER SET utf8mb4")
    admin.close()
    store = url.set(drivername="mysql", host="127.0.0.1", port=dist.db.port, database=DATABASE,
                    query={})
    env["ZENML_STORE_URL"] = store.render_as_string(hide_password=False)
    env["ZENML_STORE_TYPE"] = "sql"
    init = subprocess.run([str(python.parent / "zenml"), "init"], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    if init.returncode != 0:
        raise Skip(f"ZenML could not use MariaDB as its SQL store (`zenml init` failed): "
                   f"{init.stderr.strip()[-500:]}")
    length = ctx.sizes.chain_length
    dist.set_delay(0)
    ctx.say("ZenML at distance: recording its cached baseline")
    errors = (workdir / "side.log").open("w")  # ZenML's logging must not fill a pipe
    side = subprocess.Popen([str(python), SIDE, str(length)], cwd=workdir, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
    assert side.stdin is not None and side.stdout is not None

    def stderr_tail() -> str:
        errors.flush()
        return (workdir / "side.log").read_text(errors="replace")[-3000:]

    def ask(kind: str) -> dict[str, Any]:
        assert side.stdin is not None and side.stdout is not None
        side.stdin.write(json.dumps({"run": kind}) + "\n")
        side.stdin.flush()
        line = side.stdout.readline()
        if not line:
            side.wait(30)
            raise RuntimeError(f"the ZenML side died: {stderr_tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    figures: list[Figure] = []
    try:
        ready = side.stdout.readline()
        if not ready:
            side.wait(30)
            raise Skip(f"ZenML could not run on MariaDB: {stderr_tail()[-800:]}")
        version = json.loads(ready)["zenml"]
        for delay in delays:
            dist.set_delay(delay)
            ctx.say(f"ZenML at {delay} ms one way")
            for kind in ("cached", "cold"):
                repeat = 1 if delay or ctx.preset == "tiny" else 3
                walls: list[float] = []
                extra: dict[str, Any] = {}
                for _ in range(repeat):
                    dist.reset()
                    answer = ask(kind)
                    walls.append(answer["wall"])
                    extra = {"statements": answer["statements"], "statuses": answer["statuses"],
                             **dist.counts()}
                extra["db_round_trips"] = extra["db_turns"]
                extra["gcs_requests"] = 0
                extra["per_step_s"] = statistics.median(walls) / length
                figures.append(Figure(
                    f"zenml_distance_chain_{kind}_{delay}ms",
                    f"ZenML {version}: {length}-step chain, {kind}, SQL store {delay} ms one way",
                    walls, extra={"steps": length, "delay_ms": delay, "zenml_version": version,
                                  **extra}))
    finally:
        dist.set_delay(0)
        if side.poll() is None:
            side.stdin.close()
            try:
                side.wait(60)
            except subprocess.TimeoutExpired:
                side.kill()
                side.wait()
        errors.close()
    return figures
