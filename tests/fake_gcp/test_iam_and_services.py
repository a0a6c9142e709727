"""Resource Manager IAM, Service Usage and OAuth through the real clients against the fake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions as core_exceptions
from googleapiclient.errors import HttpError

from tests.fake_gcp.conftest import PROJECT
from zenml_collab.testing.fake_gcp import FakeGCP

MEMBER = "serviceAccount:dana@proj-a.iam.gserviceaccount.com"


@pytest.fixture
def projects_client(gcp: FakeGCP, credentials_for: Callable[..., Any]) -> Iterator[Any]:
    """google-cloud-resource-manager's ProjectsClient (REST) as the project owner."""
    from google.cloud import resourcemanager_v3

    client = resourcemanager_v3.ProjectsClient(
        credentials=credentials_for(), transport="rest",
        client_options={"api_endpoint": gcp.url})
    yield client
    client.transport.close()


def test_set_iam_policy_grants_role_and_changes_etag(projects_client: Any) -> None:
    policy = projects_client.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    policy.bindings.add(role="roles/cloudsql.client", members=[MEMBER])
    updated = projects_client.set_iam_policy(
        request={"resource": f"projects/{PROJECT}", "policy": policy})
    roles = {b.role: list(b.members) for b in updated.bindings}
    assert roles["roles/cloudsql.client"] == [MEMBER]
    assert updated.etag != policy.etag


def test_set_iam_policy_with_stale_etag_conflicts(projects_client: Any) -> None:
    stale = projects_client.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    fresh = projects_client.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    fresh.bindings.add(role="roles/viewer", members=[MEMBER])
    projects_client.set_iam_policy(request={"resource": f"projects/{PROJECT}", "policy": fresh})
    stale.bindings.add(role="roles/cloudsql.client", members=[MEMBER])
    with pytest.raises(core_exceptions.Conflict) as conflict:
        projects_client.set_iam_policy(request={"resource": f"projects/{PROJECT}",
                                                "policy": stale})
    assert "concurrent policy changes" in conflict.value.message


def test_unknown_role_is_refused(projects_client: Any) -> None:
    policy = projects_client.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    policy.bindings.add(role="roles/cloudsql.clien", members=[MEMBER])
    with pytest.raises(core_exceptions.BadRequest):
        projects_client.set_iam_policy(request={"resource": f"projects/{PROJECT}",
                                                "policy": policy})


def test_test_iam_permissions_returns_only_what_the_member_holds(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.cloud import resourcemanager_v3

    creds = credentials_for("erin@proj-a.iam.gserviceaccount.com",
                            ("roles/cloudsql.client", "roles/cloudsql.instanceUser"))
    client = resourcemanager_v3.ProjectsClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": gcp.url})
    asked = ["cloudsql.instances.connect", "cloudsql.instances.login",
             "cloudsql.instances.create", "storage.objects.create"]
    held = client.test_iam_permissions(request={"resource": f"projects/{PROJECT}",
                                                "permissions": asked})
    client.transport.close()
    assert list(held.permissions) == ["cloudsql.instances.connect", "cloudsql.instances.login"]


def test_member_without_role_cannot_read_the_policy(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.cloud import resourcemanager_v3

    creds = credentials_for("frank@proj-a.iam.gserviceaccount.com", ("roles/cloudsql.client",))
    client = resourcemanager_v3.ProjectsClient(
        credentials=creds, transport="rest", client_options={"api_endpoint": gcp.url})
    with pytest.raises(core_exceptions.Forbidden) as denied:
        client.get_iam_policy(request={"resource": f"projects/{PROJECT}"})
    client.transport.close()
    assert denied.value.message.endswith(": The caller does not have permission")


def test_disabled_api_answers_service_disabled_until_enabled(
    gcp: FakeGCP, discovery_client: Callable[..., Any]
) -> None:
    sql, usage = discovery_client("sqladmin"), discovery_client("serviceusage")
    name = f"projects/{PROJECT}/services/sqladmin.googleapis.com"
    gcp.disable_service(PROJECT, "sqladmin.googleapis.com")
    assert usage.services().get(name=name).execute()["state"] == "DISABLED"
    with pytest.raises(HttpError) as disabled:
        sql.instances().list(project=PROJECT).execute()
    error = json.loads(disabled.value.content)["error"]
    assert disabled.value.status_code == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert error["details"][0]["reason"] == "SERVICE_DISABLED"
    assert error["details"][0]["metadata"]["service"] == "sqladmin.googleapis.com"

    usage.services().enable(name=name, body={}).execute()
    assert usage.services().get(name=name).execute()["state"] == "ENABLED"
    assert sql.instances().list(project=PROJECT).execute()["kind"] == "sql#instancesList"


def test_tokens_come_from_the_fake_token_endpoint_and_are_refreshed_after_expiry(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials_for())
    url = f"{gcp.url}/v1/projects/{PROJECT}/instances"
    assert session.get(url).status_code == 200
    issued = gcp.authority.issued
    gcp.inject("sql.instances.list", expire_token=True)
    assert session.get(url).status_code == 200  # 401 first; google-auth refreshes and retries
    session.close()
    assert gcp.authority.issued == issued + 1
    assert [r.status for r in gcp.requests if r.method_id == "sql.instances.list"] == [
        200, 401, 200]


def test_call_without_token_is_unauthenticated(gcp: FakeGCP) -> None:
    import requests

    answer = requests.get(f"{gcp.url}/v1/projects/{PROJECT}/instances", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def test_unknown_request_field_is_refused_and_recorded(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials_for())
    answer = session.post(f"{gcp.url}/v1/projects/{PROJECT}/instances",
                          json={"name": "main", "tierr": "db-f1-micro"})
    session.close()
    assert answer.status_code == 400
    assert 'Unknown name "tierr"' in answer.json()["error"]["message"]
    assert gcp.violations == [
        'request of sql.instances.insert: Unknown name "tierr": Cannot find field.']
    gcp.violations.clear()  # proven; the fixture would fail the test on it otherwise


def test_injected_errors_and_dropped_connections_hit_only_matching_calls(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    import requests
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials_for())
    instances = f"{gcp.url}/v1/projects/{PROJECT}/instances"
    gcp.inject("sql.instances.list", status=503, times=1)
    gcp.inject("GET /v1/projects/*/instances/missing", drop=True)
    first, second = session.get(instances), session.get(instances)
    with pytest.raises(requests.ConnectionError):
        session.get(f"{instances}/missing")
    session.close()
    assert (first.status_code, first.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert second.status_code == 200
    assert [(r.method_id, r.status) for r in gcp.requests if r.member] == [
        ("sql.instances.list", 503), ("sql.instances.list", 200), ("sql.instances.get", 0)]


def test_authorized_user_credentials_refresh_through_the_fake(
    gcp: FakeGCP, discovery_client: Callable[..., Any]
) -> None:
    from google.auth.transport.requests import Request
    from google.oauth2 import credentials as user_credentials

    key_file = gcp.add_member("dev@example.com", roles=["roles/viewer"], project=PROJECT,
                              kind="user")
    # google-auth ignores token_uri in authorized-user files (always Google's); point it back.
    creds = user_credentials.Credentials.from_authorized_user_file(str(key_file))
    creds = creds.with_token_uri(gcp.token_uri)
    creds.refresh(Request())
    gcp.requests.clear()
    from googleapiclient.discovery import build

    sql = build("sqladmin", "v1", credentials=creds, static_discovery=True,
                client_options={"api_endpoint": f"{gcp.url}/"})
    sql.instances().list(project=PROJECT).execute()
    sql.close()
    assert [(r.member, r.status) for r in gcp.requests] == [("dev@example.com", 200)]


def test_minted_token_works_as_plain_oauth_credentials(gcp: FakeGCP) -> None:
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2 import credentials as user_credentials

    gcp.grant(PROJECT, "roles/viewer", "user:tester@example.com")
    creds = user_credentials.Credentials(token=gcp.token_for("tester@example.com"))
    session = AuthorizedSession(creds)
    answer = session.get(f"{gcp.url}/v1/projects/{PROJECT}/instances")
    session.close()
    assert answer.status_code == 200


def test_latency_fault_delays_but_does_not_fail_the_call(
    gcp: FakeGCP, sqladmin_for: Callable[..., Any]
) -> None:
    fault = gcp.inject("sql.instances.list", status=None, latency=0.05)
    listing = sqladmin_for().instances().list(project=PROJECT).execute()
    assert listing["kind"] == "sql#instancesList"
    assert fault.hits == 1
