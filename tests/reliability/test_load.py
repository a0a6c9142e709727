"""Load: 8 member processes x 20 runs on MariaDB + fake-gcs-server, the database restarted twice.

Bounded so it runs in scripts/test (a tiny two-step pipeline; five parameter values shared by
all processes, so members race to create the same cache entries). Proves: no run lost or
duplicated, none left ``running``, one cache row per key. ``LOAD_REPORT`` (if set) receives the
figures as JSON for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

PROCESSES = 8
RUNS = 20

STEPS = '''
from zenml_collab import step

@step
def numbers(n: int = 3) -> list:
    return list(range(n))

@step
def total(xs: list) -> int:
    return sum(xs)
'''

MEMBER = '''
import json, sys
from zenml_collab import Pipeline, Repository
from zenml_collab.errors import CollabError
import load_steps

ids, errors = [], []
repo = Repository()
for i in range(int(sys.argv[1])):
    p = Pipeline(f"load-{i % 5}")
    p.add(load_steps.numbers, params={"n": i % 5})
    p.add(load_steps.total, inputs={"xs": "numbers"})
    try:
        ids.append(p.run(repo).id)
    except CollabError as exc:
        errors.append(f"{type(exc).__name__}: {exc.message}")
print(json.dumps({"ids": ids, "errors": errors}))
'''


@pytest.mark.mysql
@pytest.mark.gcs
@pytest.mark.slow
def test_eight_members_running_at_once_through_two_database_restarts_lose_nothing(
        tmp_repo: Any, mysql_url: Any, mysql_server: Any, gcs_bucket: str) -> None:
    import sqlalchemy as sa

    from zenml_collab.actions.config import metadata_values, set_artifacts, set_metadata

    root = tmp_repo.root
    tmp_repo.gen({"load_steps.py": STEPS, "member.py": MEMBER})
    set_metadata(root, metadata_values("mysql", host=mysql_url.host, port=mysql_url.port,
                                       username=mysql_url.username, database=mysql_url.database),
                 password=mysql_url.password)
    set_artifacts(root, f"gs://{gcs_bucket}/load")
    started = time.monotonic()
    members = [subprocess.Popen([sys.executable, "member.py", str(RUNS)], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(root)})
               for _ in range(PROCESSES)]
    restarts: list[float] = []

    def recorded() -> int:
        try:
            conn = mysql_server.connect(mysql_url.database)
        except Exception:
            return 0
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM runs")
                return int(cursor.fetchone()[0])
        except Exception:
            return 0  # no schema yet
        finally:
            conn.close()

    def restart_twice() -> None:
        # By progress, not by the clock: both restarts land while the members are running.
        for after in (PROCESSES, PROCESSES * RUNS // 2):
            while recorded() < after:
                if all(m.poll() is not None for m in members):
                    return
                time.sleep(0.1)
            t0 = time.monotonic()
            mysql_server.restart()
            restarts.append(round(time.monotonic() - t0, 1))

    chaos = threading.Thread(target=restart_twice)
    chaos.start()
    outputs = [m.communicate(timeout=900) for m in members]
    chaos.join()
    elapsed = time.monotonic() - started
    reports = []
    for (out, err), member in zip(outputs, members, strict=True):
        assert member.returncode == 0, err[-2000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    ids = [i for r in reports for i in r["ids"]]
    errors = [e for r in reports for e in r["errors"]]

    engine = sa.create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            def scalar(sql: str) -> int:
                return int(conn.execute(sa.text(sql)).scalar() or 0)

            runs = scalar("SELECT COUNT(*) FROM runs")
            distinct = scalar("SELECT COUNT(DISTINCT id) FROM runs")
            running = scalar("SELECT COUNT(*) FROM runs WHERE status = 'running'")
            completed = scalar("SELECT COUNT(*) FROM runs WHERE status = 'completed'")
            cache_rows = scalar("SELECT COUNT(*) FROM cache_entries")
            cache_keys = scalar("SELECT COUNT(DISTINCT cache_key) FROM cache_entries")
            step_dupes = scalar("SELECT COUNT(*) FROM (SELECT run_id, position FROM step_runs "
                                "GROUP BY run_id, position HAVING COUNT(*) > 1) d")
    finally:
        engine.dispose()
    figures = {"processes": PROCESSES, "runs_each": RUNS, "restarts_s": restarts,
               "seconds": round(elapsed, 1), "completed": completed, "failed_cleanly": len(errors),
               "runs_recorded": runs, "lost": PROCESSES * RUNS - len(ids) - len(errors),
               "duplicated": runs - distinct, "left_running": running,
               "cache_rows": cache_rows, "duplicate_cache_rows": cache_rows - cache_keys,
               "duplicate_step_rows": step_dupes}
    if os.environ.get("LOAD_REPORT"):
        Path(os.environ["LOAD_REPORT"]).write_text(json.dumps(figures, indent=2))
    assert len(restarts) == 2, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, (figures, errors)
    assert running == 0 and figures["duplicate_cache_rows"] == 0 and step_dupes == 0, figures
    assert len(set(ids)) == len(ids) and completed == len(ids), figures
    assert errors == [], (figures, errors)  # the restarts are waited out, not failed
