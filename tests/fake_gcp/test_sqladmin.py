"""Cloud SQL Admin through the real discovery client against the fake."""

from __future__ import annotations

import json
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from tests.fake_gcp.conftest import ADMIN, PROJECT, create_instance
from zenml_collab.testing.fake_gcp import FakeGCP


def _error(exc: HttpError) -> dict[str, Any]:
    return json.loads(exc.content)["error"]


def test_instance_creation_goes_pending_running_done_over_configured_polls(
    gcp: FakeGCP, sqladmin_for: Any
) -> None:
    gcp.operation_polls["CREATE"] = 3
    sql = sqladmin_for()
    op = sql.instances().insert(project=PROJECT, body={"name": "main"}).execute()
    seen = [op["status"]]
    states = [sql.instances().get(project=PROJECT, instance="main").execute()["state"]]
    while op["status"] != "DONE":
        op = sql.operations().get(project=PROJECT, operation=op["name"]).execute()
        seen.append(op["status"])
    states.append(sql.instances().get(project=PROJECT, instance="main").execute()["state"])
    assert seen == ["PENDING", "RUNNING", "RUNNING", "RUNNING", "DONE"]
    assert states == ["PENDING_CREATE", "RUNNABLE"]


def test_database_insert_while_instance_is_being_created_is_refused(
    gcp: FakeGCP, sqladmin_for: Any
) -> None:
    sql = sqladmin_for()
    sql.instances().insert(project=PROJECT, body={"name": "main"}).execute()
    with pytest.raises(HttpError) as refused:
        sql.databases().insert(project=PROJECT, instance="main", body={"name": "db"}).execute()
    assert refused.value.status_code == 409
    assert _error(refused.value)["errors"][0]["reason"] == "operationInProgress"


def test_created_database_and_iam_user_are_listed(gcp: FakeGCP, sqladmin_for: Any) -> None:
    sql = sqladmin_for()
    create_instance(sql, flags={"cloudsql_iam_authentication": "on"})
    sql.databases().insert(project=PROJECT, instance="main", body={"name": "collab"}).execute()
    member = "alice@proj-a.iam.gserviceaccount.com"
    sql.users().insert(project=PROJECT, instance="main",
                       body={"name": member, "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()

    databases = sql.databases().list(project=PROJECT, instance="main").execute()["items"]
    users = sql.users().list(project=PROJECT, instance="main").execute()["items"]
    instance = sql.instances().get(project=PROJECT, instance="main").execute()

    assert [d["name"] for d in databases] == ["collab"]
    assert {(u["name"], u["type"]) for u in users} >= {(member, "CLOUD_IAM_SERVICE_ACCOUNT")}
    assert instance["settings"]["databaseFlags"] == [
        {"name": "cloudsql_iam_authentication", "value": "on"}]
    assert instance["connectionName"] == f"{PROJECT}:europe-west1:main"


def test_creating_an_existing_instance_conflicts(gcp: FakeGCP, sqladmin_for: Any) -> None:
    sql = sqladmin_for()
    create_instance(sql)
    with pytest.raises(HttpError) as refused:
        sql.instances().insert(project=PROJECT, body={"name": "main"}).execute()
    assert refused.value.status_code == 409
    assert _error(refused.value)["errors"][0]["reason"] == "instanceAlreadyExists"


def test_patch_changes_flags_and_state_can_be_forced(gcp: FakeGCP, sqladmin_for: Any) -> None:
    sql = sqladmin_for()
    create_instance(sql)
    flags = [{"name": "cloudsql_iam_authentication", "value": "on"}]
    sql.instances().patch(project=PROJECT, instance="main",
                          body={"settings": {"databaseFlags": flags}}).execute()
    gcp.set_instance_state(PROJECT, "main", "SUSPENDED")
    instance = sql.instances().get(project=PROJECT, instance="main").execute()
    assert instance["settings"]["databaseFlags"] == flags
    assert instance["state"] == "SUSPENDED"


def test_member_without_connect_permission_is_refused_like_google(
    gcp: FakeGCP, sqladmin_for: Any
) -> None:
    create_instance(sqladmin_for())
    viewer = sqladmin_for("bob@proj-a.iam.gserviceaccount.com", ("roles/viewer",))
    with pytest.raises(HttpError) as refused:
        viewer.connect().generateEphemeralCert(
            project=PROJECT, instance="main", body={"public_key": "unused"}).execute()
    error = _error(refused.value)
    assert refused.value.status_code == 403
    assert error["message"] == "The client is not authorized to make this request."
    assert error["errors"] == [{"message": error["message"], "domain": "global",
                                "reason": "notAuthorized"}]


def test_member_with_client_role_reads_connect_settings(gcp: FakeGCP, sqladmin_for: Any) -> None:
    create_instance(sqladmin_for())
    client = sqladmin_for("carol@proj-a.iam.gserviceaccount.com", ("roles/cloudsql.client",))
    settings = client.connect().get(project=PROJECT, instance="main").execute()
    assert settings["ipAddresses"] == [{"type": "PRIMARY", "ipAddress": gcp.sql_ip}]
    assert settings["serverCaCert"]["cert"] == gcp.ca.pem
    with pytest.raises(HttpError) as refused:
        client.instances().insert(project=PROJECT, body={"name": "other"}).execute()
    assert refused.value.status_code == 403


def test_missing_instance_is_not_found(gcp: FakeGCP, sqladmin_for: Any) -> None:
    with pytest.raises(HttpError) as missing:
        sqladmin_for().instances().get(project=PROJECT, instance="nope").execute()
    assert missing.value.status_code == 404
    assert _error(missing.value)["errors"][0]["reason"] == "instanceDoesNotExist"


def test_request_log_names_member_and_mutating_calls(gcp: FakeGCP, sqladmin_for: Any) -> None:
    sql = sqladmin_for()
    create_instance(sql)
    gcp.requests.clear()
    sql.instances().get(project=PROJECT, instance="main").execute()
    sql.instances().list(project=PROJECT).execute()
    assert gcp.mutating_requests() == []
    sql.databases().insert(project=PROJECT, instance="main", body={"name": "d"}).execute()
    [mutation] = gcp.mutating_requests()
    assert (mutation.method_id, mutation.member, mutation.status) == (
        "sql.databases.insert", ADMIN, 200)
