"""Start and stop the real services the test suite talks to: MariaDB, fake-gcs-server, dockerd.

Driven by ``scripts/test``::

    python -m zenml_collab.testing.services start DIR   # writes DIR/state.json and DIR/env.sh
    python -m zenml_collab.testing.services env DIR     # prints the export lines (secret!)
    python -m zenml_collab.testing.services stop DIR    # stops what start started, removes DIR

Every service binds to 127.0.0.1 on a free port and keeps its files in DIR, so several runs
(several engineers, CI) can share one machine. ``state.json`` (mode 0600, it holds the generated
MariaDB root password) lets the fixtures find the services again, and restart MariaDB for fault
tests; its path is exported as ``COLLAB_TEST_SERVICES_STATE``. No password is ever put on a
command line: MariaDB gets it from an init file that is deleted once the server is up.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zenml_collab.testing.services._process import free_port, log, terminate, write_private
from zenml_collab.testing.services.dockerd import (
    PROXY_IMAGE_TAG,
    DockerState,
    finish_dockerd,
    launch_dockerd,
    stop_dockerd,
)
from zenml_collab.testing.services.gcs import start_fake_gcs
from zenml_collab.testing.services.mysql import MySQLControl, MySQLState, mysql_ping, start_mysql

__all__ = [
    "PROXY_IMAGE_TAG",
    "STATE_ENV",
    "MySQLControl",
    "MySQLState",
    "env_lines",
    "free_port",
    "main",
    "mysql_ping",
    "start",
    "stop",
]

STATE_ENV = "COLLAB_TEST_SERVICES_STATE"


def env_lines(state: dict[str, Any], state_file: Path) -> list[str]:
    """The ``export`` lines for pytest (values quoted for the shell)."""

    mysql = state["mysql"]
    env = {
        STATE_ENV: str(state_file),
        "COLLAB_TEST_MYSQL_URL": (
            f"mysql+pymysql://{mysql['user']}:{mysql['password']}@{mysql['host']}:{mysql['port']}/"
        ),
        "COLLAB_TEST_GCS_ENDPOINT": state["gcs"]["endpoint"],
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TC_HOST": "127.0.0.1",
    }
    docker_state = DockerState(**state["docker"])
    if docker_state.skip_reason:
        env["COLLAB_TEST_DOCKER_SKIP_REASON"] = docker_state.skip_reason
    else:
        env["DOCKER_HOST"] = docker_state.host
        env["COLLAB_TEST_DOCKER"] = "1"
        if docker_state.proxy_image:
            env["COLLAB_TEST_PROXY_IMAGE"] = docker_state.proxy_image
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def start(base: Path) -> dict[str, Any]:
    """Start every service under ``base``; write ``state.json`` and ``env.sh``; return the state."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)
    state_file = base / "state.json"
    started = time.monotonic()
    # dockerd takes a few seconds to come up: let it boot while MariaDB installs.
    docker_state = launch_dockerd(base / "docker")
    state: dict[str, Any] = {"docker": asdict(docker_state), "mysql": None, "gcs": None}
    write_private(state_file, json.dumps(state, indent=2))  # so `stop` works if we fail below
    try:
        state["mysql"] = asdict(start_mysql(base / "mysql"))
        write_private(state_file, json.dumps(state, indent=2))
        endpoint, gcs_pid = start_fake_gcs(base / "gcs")
        state["gcs"] = {"endpoint": endpoint, "pid": gcs_pid}
        write_private(state_file, json.dumps(state, indent=2))
        finish_dockerd(docker_state)
        state["docker"] = asdict(docker_state)
    finally:
        write_private(state_file, json.dumps(state, indent=2))
    write_private(base / "env.sh", "\n".join(env_lines(state, state_file)) + "\n")
    docker_note = docker_state.skip_reason or f"up, proxy image {docker_state.proxy_image or '-'}"
    log(
        f"MariaDB on 127.0.0.1:{state['mysql']['port']}, fake-gcs at {endpoint}, "
        f"dockerd: {docker_note} ({time.monotonic() - started:.1f}s)"
    )
    return state


def stop(base: Path) -> None:
    """Stop whatever :func:`start` recorded under ``base`` and remove the directory."""
    state_file = base / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("docker"):
            stop_dockerd(DockerState(**state["docker"]))
        if state.get("gcs"):
            terminate(state["gcs"]["pid"], timeout=10)
        if state.get("mysql"):
            terminate(state["mysql"]["pid"], timeout=60)
    _unmount_below(base)
    shutil.rmtree(base, ignore_errors=True)


def _unmount_below(base: Path) -> None:
    """dockerd killed hard may leave overlay/shm mounts that would block the rmtree."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(str(base))), reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in {"start", "stop", "env"}:
        print("usage: python -m zenml_collab.testing.services start|stop|env DIR", file=sys.stderr)
        return 2
    command, base = args[0], Path(args[1]).resolve()
    if command == "start":
        start(base)
        # Not the exports themselves: they hold the root password; `source DIR/env.sh`.
        print(base / "env.sh")
    elif command == "env":
        print((base / "env.sh").read_text(), end="")
    else:
        stop(base)
    return 0
