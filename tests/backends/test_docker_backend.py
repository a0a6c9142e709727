"""Steps on the docker backend: real containers on the test dockerd, shared stores, local cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import STEPS_MODULE, containers_created

from zenml_collab import Pipeline, Repository
from zenml_collab.errors import StepFailedError

pytestmark = [pytest.mark.docker, pytest.mark.mysql, pytest.mark.gcs, pytest.mark.slow]


def steps() -> Any:
    import importlib

    return importlib.import_module(STEPS_MODULE)


def test_docker_steps_record_like_in_process_and_a_rerun_starts_no_container(
        mysql_gcs_repo: Path, docker_client: Any) -> None:
    s = steps()
    p = Pipeline("on docker")
    p.add(s.numbers, params={"n": 10}, backend="local")
    p.add(s.total, inputs={"xs": "numbers"})
    t0 = time.time()
    run = Pipeline.run(p, Repository(mysql_gcs_repo))
    assert run.statuses == {"numbers": "executed", "total": "executed"}
    assert run.load("total") == 45
    assert containers_created(docker_client, t0) == 1  # only the docker step travelled
    recorded = Repository(mysql_gcs_repo).get_run(run.id)
    assert recorded.statuses == run.statuses
    total = recorded["total"]
    assert total.reason == "no previous run"  # the plain reason; where it ran is data
    assert total.execution is not None and total.execution.backend == "docker"
    assert (total.execution.image or "").startswith("sha256:") and total.execution.job is None
    assert recorded["numbers"].execution is None  # ran in this process
    assert run["total"].execution == total.execution

    t1 = time.time()
    again = Repository(mysql_gcs_repo).pipeline_from_config("on docker").run(
        Repository(mysql_gcs_repo))
    assert set(again.statuses.values()) == {"cached"}
    assert containers_created(docker_client, t1) == 0


def test_two_independent_docker_steps_overlap_in_time(mysql_gcs_repo: Path,
                                                     docker_client: Any) -> None:
    s = steps()
    p = Pipeline("branches")
    p.add(s.numbers, backend="local")
    p.add(s.slow_a, inputs={"xs": "numbers"}, params={"seconds": 3.0})
    p.add(s.slow_b, inputs={"xs": "numbers"}, params={"seconds": 3.0})
    t0 = time.time()
    run = p.run(Repository(mysql_gcs_repo))
    a, b = run.load("slow_a"), run.load("slow_b")
    assert containers_created(docker_client, t0) == 2
    assert a["start"] < b["end"] and b["start"] < a["end"]  # their bodies overlapped


def test_a_step_failing_in_its_container_fails_with_the_containers_message(
        mysql_gcs_repo: Path) -> None:
    s = steps()
    p = Pipeline("fails")
    p.add(s.numbers, backend="local")
    p.add(s.boom, inputs={"xs": "numbers"})
    repo = Repository(mysql_gcs_repo)
    with pytest.raises(StepFailedError) as info:
        p.run(repo)
    assert "boom from inside the container" in info.value.message
    assert "docker container" in info.value.message
    run = repo.get_pipeline_runs("fails")[0]
    assert run.status == "failed"
    assert run.statuses["boom"] == "failed"


def test_collab_image_build_installs_this_zenml_collab_on_the_base_and_records_the_image(
        tmp_path: Path, docker_client: Any, step_image: str) -> None:
    import subprocess
    import sys

    from zenml_collab.testing.base_image import ensure_base_image
    from zenml_collab.testing.repos import make_git_repo

    make_git_repo(tmp_path)
    (tmp_path / ".collab").mkdir()
    base = ensure_base_image(docker_client)
    done = subprocess.run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()",
                           "image", "build", "--base", base, "--no-index", "--tag",
                           "collab-test/cli-image:dev"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "collab-test/cli-image:dev" in (tmp_path / ".collab" / "local.yaml").read_text()
    out = docker_client.containers.run("collab-test/cli-image:dev", [
        "python3", "-c", "import zenml_collab.worker, importlib.metadata as m; "
        "print(m.version('zenml-collab'))"], remove=True, network_mode="none")
    from importlib.metadata import version

    assert out.decode().strip() == version("zenml-collab")


def test_a_docker_step_keeps_the_database_password_out_of_its_container(
        mysql_gcs_repo: Path, docker_client: Any, mysql_url: Any) -> None:
    import json
    import threading

    from zenml_collab.core.backends.docker import LABEL

    password = mysql_url.password  # what shared_helpers.mysql_login hands `collab config`
    assert password  # the team logs in with a password
    s = steps()
    p = Pipeline("secret stays out")
    p.add(s.numbers, backend="local")
    p.add(s.slow_a, inputs={"xs": "numbers"}, params={"seconds": 4.0})
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def inspect_while_running() -> None:  # the backend removes the container when it ends
        while not done.is_set() and not seen:
            for c in docker_client.containers.list(filters={"label": LABEL}):
                if c.labels.get(LABEL, "").endswith("/slow_a"):
                    seen.append(docker_client.api.inspect_container(c.id))
            time.sleep(0.2)

    watcher = threading.Thread(target=inspect_while_running)
    watcher.start()
    try:
        run = p.run(Repository(mysql_gcs_repo))
    finally:
        done.set()
        watcher.join()
    assert run.statuses["slow_a"] == "executed" and run.load("slow_a")["end"] > 0
    assert seen, "the step's container was never seen running"
    config = seen[0]["Config"]
    env, args = config.get("Env") or [], (seen[0].get("Args") or []) + (config.get("Cmd") or [])
    assert not any(password in item for item in env + args)
    assert "COLLAB_WORKER_STORES_FILE=/var/run/collab/stores.json" in env
    stores_mount = [m for m in seen[0]["Mounts"]
                    if m["Destination"] == "/var/run/collab/stores.json"]
    assert len(stores_mount) == 1 and stores_mount[0]["RW"] is False
    assert not Path(stores_mount[0]["Source"]).exists()  # removed after the container ended
    assert json.dumps(password) not in json.dumps(seen[0]["Config"])
