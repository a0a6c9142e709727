"""Tiers/regions/flags checks, project lookup, batch enable, discovery validation, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from tests.fake_gcp.conftest import PROJECT
from zenml_collab.testing.fake_gcp import FakeGCP, discovery


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "i", "region": "mars-north1"}, "Region (mars-north1) is not valid."),
        ({"name": "i", "settings": {"tier": "db-huge"}}, "Invalid Tier (db-huge)"),
        ({"name": "i", "settings": {"databaseFlags": [
            {"name": "cloudsql_iam_authentication", "value": "yes"}]}}, "Invalid flag value"),
        ({"name": "i", "settings": {"databaseFlags": [{"name": "no_such_flag", "value": "1"}]}},
         "Flag 'no_such_flag' is not supported"),
    ],
)
def test_instance_with_unknown_region_tier_or_flag_is_refused(
    sqladmin_for: Callable[..., Any], body: dict[str, Any], expected: str
) -> None:
    with pytest.raises(HttpError) as refused:
        sqladmin_for().instances().insert(project=PROJECT, body=body).execute()
    assert refused.value.status_code == 400
    assert expected in json.loads(refused.value.content)["error"]["message"]


def test_tiers_and_flags_are_listed(sqladmin_for: Callable[..., Any]) -> None:
    sql = sqladmin_for()
    tiers = {t["tier"] for t in sql.tiers().list(project=PROJECT).execute()["items"]}
    flags = {f["name"] for f in sql.flags().list(databaseVersion="MYSQL_8_0").execute()["items"]}
    assert "db-f1-micro" in tiers
    assert "cloudsql_iam_authentication" in flags


def test_batch_enable_turns_services_on(gcp: FakeGCP,
                                        discovery_client: Callable[..., Any]) -> None:
    gcp.disable_service(PROJECT, "sqladmin.googleapis.com")
    gcp.disable_service(PROJECT, "storage.googleapis.com")
    usage = discovery_client("serviceusage")
    op = usage.services().batchEnable(parent=f"projects/{PROJECT}", body={"serviceIds": [
        "sqladmin.googleapis.com", "storage.googleapis.com"]}).execute()
    enabled = usage.services().list(parent=f"projects/{PROJECT}",
                                    filter="state:ENABLED").execute()["services"]
    assert op["done"] is True
    assert {"sqladmin.googleapis.com", "storage.googleapis.com"} <= {
        s["config"]["name"] for s in enabled}


def test_project_lookup_returns_number_and_refuses_unknown_projects(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.api_core import exceptions as core_exceptions
    from google.cloud import resourcemanager_v3

    client = resourcemanager_v3.ProjectsClient(
        credentials=credentials_for(), transport="rest", client_options={"api_endpoint": gcp.url})
    project = client.get_project(name=f"projects/{PROJECT}")
    with pytest.raises(core_exceptions.Forbidden):
        client.get_project(name="projects/someone-elses")
    client.transport.close()
    assert project.name == f"projects/{gcp.world.projects[PROJECT].number}"
    assert project.project_id == PROJECT


def test_discovery_validation_names_nested_unknown_fields_and_wrong_types() -> None:
    body = {"name": "i", "settings": {"tier": "db-f1-micro", "tierr": 1,
                                      "databaseFlags": [{"name": "x", "valu": "1"}]},
            "maxDiskSize": {"not": "a number"}}
    problems = discovery.validate(body, "DatabaseInstance", "sqladmin.v1.json")
    assert 'Unknown name "tierr" at \'settings\': Cannot find field.' in problems
    assert 'Unknown name "valu" at \'settings.databaseFlags[0]\': Cannot find field.' in problems
    assert any("maxDiskSize" in p and "expected a string" in p for p in problems)
    assert discovery.validate({"name": "i", "settings": {"tier": "db-f1-micro"}},
                              "DatabaseInstance", "sqladmin.v1.json") == []


def test_unknown_route_is_a_violation(gcp: FakeGCP) -> None:
    import requests

    answer = requests.get(f"{gcp.url}/v1/projects/{PROJECT}/nonsense", timeout=5)
    assert answer.status_code == 404
    assert gcp.violations == [f"unknown route: GET /v1/projects/{PROJECT}/nonsense"]
    gcp.violations.clear()


def test_token_endpoint_fault_makes_refresh_fail_then_recover(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.auth import exceptions as auth_exceptions
    from google.auth.transport.requests import Request

    creds = credentials_for()
    gcp.inject("oauth2.token", status=400, times=1)
    with pytest.raises(auth_exceptions.RefreshError):
        creds.refresh(Request())
    creds.refresh(Request())
    assert creds.valid


def test_module_cli_prints_environment_and_a_key_file() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLLAB_TEST_MYSQL_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "zenml_collab.testing.fake_gcp", "--port",
                             "0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("#"):  # the exports end with a comment
            lines.append(proc.stdout.readline())
        exported = dict(line.removeprefix("export ").strip().split("=", 1)
                        for line in lines if line.startswith("export "))
        key_file = Path(exported["GOOGLE_APPLICATION_CREDENTIALS"])
        key = json.loads(key_file.read_text())
        mode = key_file.stat().st_mode & 0o777
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    assert exported["COLLAB_SQLADMIN_ENDPOINT"].startswith("http://127.0.0.1:")
    assert key["token_uri"] == exported["STORAGE_EMULATOR_HOST"] + "/token"
    assert mode == 0o600
    assert not key_file.exists()  # SIGTERM cleaned up the private key


def test_env_fixture_points_endpoints_at_the_fake(fake_gcp_env: FakeGCP) -> None:
    assert os.environ["COLLAB_SQLADMIN_ENDPOINT"] == f"{fake_gcp_env.url}/"
    assert os.environ["STORAGE_EMULATOR_HOST"] == fake_gcp_env.url
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ


def test_public_api_is_pinned() -> None:
    import zenml_collab.testing.fake_gcp as package
    import zenml_collab.testing.fixtures_gcp as fixtures

    assert package.__all__ == ["FakeGCP", "LoggedRequest"]
    assert fixtures.__all__ == ["fake_gcp", "fake_gcp_env", "fake_gcp_mysql"]
