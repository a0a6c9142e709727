"""Fault matrix, Google side: permission, API and bucket failures are named errors with a fix.

Each test builds the real setup on the fake Google APIs (+ MariaDB behind the fake instance,
fake-gcs-server for buckets), breaks one thing, and runs the member's command in-process
through the CLI's own ``main`` (so exit code and the printed error are exactly a member's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from reliability.matrix import fault
from zenml_collab.errors import CollabError

if TYPE_CHECKING:
    from tests.doctor.conftest import World

# The doctor tests' team (tests/doctor/conftest.py); imported lazily so that
# `python tests/reliability/matrix.py` can collect the rows without the test tree on sys.path.
PROJECT = "team-proj"
CONNECTION = f"{PROJECT}:us-central1:main"


@pytest.fixture
def make_world(fake_gcp_mysql: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               mysql_server: Any, docker_client: Any,
               proxy_image: str) -> Iterator[Callable[..., World]]:
    """``make_world(**options)``: the doctor tests' healthy member setup, then broken once."""
    from tests.doctor.conftest import CONNECTION as DOCTOR_CONNECTION
    from tests.doctor.conftest import Options, build_world

    assert DOCTOR_CONNECTION == CONNECTION
    if not mysql_server.socket:
        pytest.skip("needs the MariaDB socket path from scripts/test's state file")
    built: list[World] = []

    def make(**overrides: Any) -> World:
        world = build_world(fake_gcp_mysql, tmp_path, monkeypatch, mysql_server, docker_client,
                            proxy_image, Options(**overrides))
        built.append(world)
        return world

    yield make
    from zenml_collab.infra.proxy import stop_proxy

    for world in built:
        stop_proxy(docker_client, repo_root=world.root, timeout=2)


def collab(root: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run `collab ARGS` in ``root`` in this process: (exit code, stdout + stderr)."""
    from zenml_collab.testing.cli import run_cli

    monkeypatch.chdir(root)
    done = run_cli(*args)
    return done.code, done.output


def connector_mode(world: World) -> None:
    """Switch the member's clone to the in-process Cloud SQL connector (no proxy)."""
    from zenml_collab.config import LocalConfig, MetadataConfig, write_local_config

    write_local_config(world.root, LocalConfig(
        metadata=MetadataConfig(kind="cloudsql", instance=CONNECTION, username=world.login,
                                database=world.database, auth="iam", connector="python"),
        credentials_file=str(world.key_file), connector="python"))


def doctor(world: World) -> Any:
    from zenml_collab.actions.doctor import DoctorContext, run_doctor

    return run_doctor(lambda: DoctorContext(world.root))


@pytest.mark.mysql
@pytest.mark.docker
@fault("google.connector-403",
       fault="connector mode, member without roles/cloudsql.client",
       sees="`collab pipelines list`: permission error naming roles/cloudsql.client and the "
            "admin's grant command; doctor names the role, no check crashes",
       exit_code=3, kept="nothing written")
def test_connector_member_without_cloudsql_client_gets_the_role_and_the_grant_command(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(start_proxy=False, member_roles=("roles/cloudsql.instanceUser",))
    connector_mode(world)
    code, output = collab(world.root, "pipelines", "list", monkeypatch=monkeypatch)
    assert code == 3, output
    assert "internal error" not in output
    assert "roles/cloudsql.client" in output
    assert (f"gcloud projects add-iam-policy-binding {PROJECT} --member={world.member} "
            "--role=roles/cloudsql.client") in output
    report = doctor(world)
    crashed = {r.id: r.detail for r in report.results if "crashed" in r.detail}
    assert crashed == {}
    assert report.get("db.query").status == "fail"
    assert "roles/cloudsql.client" in (report.get("db.query").fix or "")
    assert report.get("sql.user").status != "fail"  # no wrong "create the user" fix
    assert report.exit_code == 3


@pytest.mark.mysql
@pytest.mark.docker
@fault("google.sqladmin-disabled",
       fault="Cloud SQL Admin API disabled (connector mode)",
       sees="doctor `gcp.api.sqladmin` and `db.query` fail with "
            "`gcloud services enable sqladmin.googleapis.com`; `collab pipelines list` too",
       exit_code=1, kept="nothing written")
def test_disabled_sqladmin_api_is_a_user_error_with_the_enable_command(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(start_proxy=False)
    connector_mode(world)
    world.fake.disable_service(PROJECT, "sqladmin.googleapis.com")
    report = doctor(world)
    query = report.get("db.query")
    assert query.status == "fail" and "crashed" not in query.detail, query.detail
    enable = f"gcloud services enable sqladmin.googleapis.com --project {PROJECT}"
    assert enable in (query.fix or "")
    assert report.exit_code == 1
    code, output = collab(world.root, "pipelines", "list", monkeypatch=monkeypatch)
    assert code == 1 and enable in output and "internal error" not in output, output


def _bucket_repo(tmp_repo: Any, uri: str) -> None:
    tmp_repo.gen({"collab.yaml": f"artifacts:\n  uri: {uri}\n"})


@pytest.mark.gcs
@fault("google.bucket-typo",
       fault="artifact URI names a bucket that does not exist (typo)",
       sees="error: the bucket does not exist, with the fix (check artifacts.uri); the Python "
            "API raises a CollabError, not google's NotFound; not blamed on a step",
       exit_code=1, kept="run recorded failed; no artifact written")
def test_a_typo_in_the_bucket_name_is_a_clear_error_from_cli_and_python_api(
    tmp_repo: Any, gcs_bucket: str,
) -> None:
    import collab_test_steps as steps

    _bucket_repo(tmp_repo, f"gs://{gcs_bucket}-typo/zenml")
    with pytest.raises(CollabError) as raised:
        steps.diamond().run()
    assert f"gs://{gcs_bucket}-typo" in raised.value.message
    assert "does not exist" in raised.value.message
    assert "artifacts.uri" in (raised.value.hint or "")
    assert "step" not in raised.value.message.split(":")[0]  # the store, not a step, is at fault
    shown = tmp_repo.collab("run", "pipelines/diamond.yaml")
    assert shown.returncode == 1, shown.stderr
    assert "internal error" not in shown.stderr and "does not exist" in shown.stderr


@pytest.mark.gcs
@fault("google.bad-artifact-uri",
       fault="artifact URI not usable (invalid bucket name, other scheme)",
       sees="`config validate` and the run fail naming artifacts.uri and the expected "
            "gs://BUCKET/PREFIX form, before any step runs",
       exit_code=1, kept="no run started")
@pytest.mark.parametrize("uri", ["gs://UPPER/x", "s3://bucket/x"])
def test_a_bad_artifact_uri_is_a_config_error_before_any_step(
    tmp_repo: Any, executions: Any, uri: str,
) -> None:
    import collab_test_steps as steps

    _bucket_repo(tmp_repo, uri)
    validated = tmp_repo.collab("config", "validate")
    assert validated.returncode == 1, validated.stdout + validated.stderr
    assert "artifacts.uri" in validated.stderr
    with pytest.raises(CollabError) as raised:
        steps.diamond().run()
    assert "gs://bucket/prefix" in ((raised.value.hint or "") + raised.value.message).lower()
    assert executions.names() == []
