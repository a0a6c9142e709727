"""What scripts/test's service harness promises beyond "the services answer"."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from zenml_collab.testing.services import STATE_ENV, env_lines

_SERVICE_VARS = (
    "COLLAB_TEST_MYSQL_URL",
    "COLLAB_TEST_GCS_ENDPOINT",
    "COLLAB_TEST_DOCKER",
    "COLLAB_TEST_PROXY_IMAGE",
    STATE_ENV,
)


def _state(docker: dict[str, str]) -> dict[str, object]:
    return {
        "mysql": {"user": "root", "password": "p w'd", "host": "127.0.0.1", "port": 3306},
        "gcs": {"endpoint": "http://127.0.0.1:4443"},
        "docker": {"host": "", "pid": 0, "bridge": "", "data_root": "", **docker},
    }


def test_env_without_docker_exports_the_reason_and_no_docker_host(tmp_path: Path) -> None:
    lines = env_lines(_state({"skip_reason": "dockerd cannot run here"}), tmp_path / "s.json")
    text = "\n".join(lines)
    assert "COLLAB_TEST_DOCKER_SKIP_REASON='dockerd cannot run here'" in text
    assert "DOCKER_HOST" not in text and "COLLAB_TEST_DOCKER=" not in text


def test_env_lines_quote_values_for_the_shell(tmp_path: Path) -> None:
    lines = env_lines(_state({"host": "unix:///x/docker.sock"}), tmp_path / "s.json")
    script = "\n".join(lines) + '\nprintf %s "$COLLAB_TEST_MYSQL_URL"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "mysql+pymysql://root:p w'd@127.0.0.1:3306/"
    assert "export COLLAB_TEST_DOCKER=1" in lines


@pytest.mark.mysql
def test_state_file_holding_the_password_is_private() -> None:
    state_file = os.environ.get(STATE_ENV)
    if not state_file:
        pytest.skip(f"{STATE_ENV} is not set (run with scripts/test)")
    assert stat.S_IMODE(Path(state_file).stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(state_file).parent.stat().st_mode) == 0o700


@pytest.mark.mysql
def test_no_process_shows_the_mariadb_password_in_its_command_line() -> None:
    from sqlalchemy.engine import make_url

    url = os.environ.get("COLLAB_TEST_MYSQL_URL")
    if not url:
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run with scripts/test)")
    password = make_url(url).password
    assert password
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:  # the process ended while we looked
            continue
        assert password.encode() not in argv, f"password visible in {cmdline}"


def test_fixtures_skip_with_a_reason_outside_scripts_test(tmp_path: Path) -> None:
    (tmp_path / "test_uses_services.py").write_text(
        "def test_db(mysql_url): pass\n"
        "def test_bucket(gcs_bucket): pass\n"
        "def test_docker(docker_client): pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 skipped" in result.stdout
    for variable in ("COLLAB_TEST_MYSQL_URL", "COLLAB_TEST_GCS_ENDPOINT", "COLLAB_TEST_DOCKER"):
        assert variable in result.stdout
