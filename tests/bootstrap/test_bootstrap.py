"""`collab bootstrap` against the fake through the real client libraries."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.bootstrap.conftest import (
    ADMIN_MEMBER,
    ALICE,
    BOB,
    PROJECT,
    REGION,
    CliResult,
    bootstrap_args,
    make_request,
    runs_grants,
)
from zenml_collab.actions import bootstrap as action
from zenml_collab.config import file_mode, load_team_config
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.testing.fake_gcp import FakeGCP

MEMBERS = (ALICE, BOB, ADMIN_MEMBER)
BUCKET = f"{PROJECT}-zenml-artifacts"


def _method_count(gcp: FakeGCP, method_id: str, status: int | None = 200) -> int:
    return sum(1 for r in gcp.requests
               if r.method_id == method_id and (status is None or r.status == status))


@runs_grants
def test_fresh_project_gets_exactly_the_resources_and_least_privilege_bindings(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    result = collab(*bootstrap_args())
    assert result.code == 0, result.err

    inst = gcp.instance(PROJECT, "zenml-metadata")
    settings = inst.resource["settings"]
    assert inst.state == "RUNNABLE" and inst.database_version == "MYSQL_8_0"
    assert inst.flags() == {"cloudsql_iam_authentication": "on"}
    assert settings["backupConfiguration"]["enabled"] is True
    assert settings["ipConfiguration"].get("authorizedNetworks", []) == []
    assert list(inst.databases) == ["zenml"] and inst.databases["zenml"]["charset"] == "utf8mb4"
    iam_users = {(u.name, u.type) for u in inst.users.values() if u.type != "BUILT_IN"}
    assert iam_users == {("alice@example.com", "CLOUD_IAM_USER"),
                         ("bob@proj-a.iam", "CLOUD_IAM_SERVICE_ACCOUNT"),
                         ("admin@proj-a.iam", "CLOUD_IAM_SERVICE_ACCOUNT")}

    policy = gcp.world.projects[PROJECT].policy.bindings
    for member in MEMBERS:
        roles = {role for role, members in policy.items() if member in members}
        assert {"roles/cloudsql.client", "roles/cloudsql.instanceUser"} <= roles
        assert not {r for r in roles if r.startswith("roles/storage.")}

    bucket = gcp.storage.bucket(BUCKET)
    assert bucket.ubla and bucket.public_access_prevention == "enforced"
    for member in MEMBERS:
        assert member in bucket.policy.bindings["roles/storage.objectAdmin"]
        assert member in bucket.policy.bindings["roles/storage.legacyBucketReader"]
    # GCS's default convenience bindings survive.
    assert f"projectOwner:{PROJECT}" in bucket.policy.bindings["roles/storage.legacyBucketOwner"]

    team = load_team_config(repo)
    assert team.gcp is not None and team.gcp.instance == f"{PROJECT}:{REGION}:zenml-metadata"
    assert team.metadata.kind == "cloudsql" and team.metadata.auth == "iam"
    assert team.artifacts.uri == f"gs://{BUCKET}"
    assert "collab join" in result.out and "git add collab.yaml .gitignore" in result.out
    # The admin's clone ignores .collab/ in the .gitignore it commits with collab.yaml.
    from zenml_collab.actions.doctor import DoctorContext, run_doctor

    ignored = run_doctor(lambda: DoctorContext(repo), only=["repo.ignored"]).get("repo.ignored")
    assert ignored.status == "pass" and ".collab/" in (repo / ".gitignore").read_text()


@runs_grants
def test_second_run_makes_no_mutating_request_and_says_everything_is_in_place(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    assert collab(*bootstrap_args()).code == 0
    before = len(gcp.requests)
    again = collab(*bootstrap_args())
    assert again.code == 0, again.err
    assert [r for r in gcp.requests[before:] if r.mutating] == []
    assert "everything is in place" in again.out


def test_dry_run_plans_everything_and_changes_nothing(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    result = collab(*bootstrap_args("--dry-run", "--json"))
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert gcp.mutating_requests() == [] and not (repo / "collab.yaml").exists()
    assert out["version"] == 1 and out["dry_run"] is True and out["applied"] is False
    plan = out["plan"]
    assert {(r["type"], r["action"]) for r in plan["resources"]} == {
        ("sql_instance", "create"), ("sql_database", "create"), ("sql_user", "create"),
        ("bucket", "create")}
    project_roles = {(b["role"], b["member"]) for b in plan["bindings"] if b["scope"] == "project"}
    assert project_roles == {(role, m) for m in MEMBERS
                             for role in ("roles/cloudsql.client", "roles/cloudsql.instanceUser")}
    # + 1: the metadata store, initialised in the new database in the grants' login.
    assert plan["changes"] == 2 + len(MEMBERS) + 1 + 4 * len(MEMBERS) + len(MEMBERS) + 1
    assert plan["store"] == {"database": "zenml", "action": "create", "store_id": None}


@runs_grants
def test_interrupted_instance_creation_resumes_without_duplicates(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    gcp.operation_polls["CREATE"] = 50

    def interrupt(event: action.Progress) -> None:
        if event.operation is not None and event.operation.polls >= 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        action.apply(admin, action.plan(admin, make_request()), interrupt)
    assert gcp.instance(PROJECT, "zenml-metadata").state == "PENDING_CREATE"

    resumed = action.plan(admin, make_request())
    assert resumed.resource("sql_instance")[0].action == "wait"
    result = action.apply(admin, resumed)
    # As the CLI does: the plan reads the collab.yaml that records the store.
    final = action.plan(admin, make_request(),
                        action.team_config(resumed, store_id=result.store_id))

    assert final.changes == 0
    assert _method_count(gcp, "sql.instances.insert", None) == 1
    assert _method_count(gcp, "sql.databases.insert", None) == 1
    assert _method_count(gcp, "sql.users.insert", None) == len(MEMBERS) + 1  # + collab-admin
    assert _method_count(gcp, "storage.buckets.insert", None) == 1


def test_admin_lacking_instance_create_exits_3_before_any_mutation(
    gcp: FakeGCP, login: Callable[..., object], collab: Callable[..., CliResult],
) -> None:
    login("weak-admin@proj-a.iam.gserviceaccount.com",
          ("roles/storage.admin", "roles/resourcemanager.projectIamAdmin",
           "roles/serviceusage.serviceUsageAdmin", "roles/cloudsql.client"))
    result = collab(*bootstrap_args())
    assert result.code == 3
    assert "cloudsql.instances.create" in result.err and "roles/cloudsql.admin" in result.err
    assert ("gcloud projects add-iam-policy-binding proj-a --member=serviceAccount:weak-admin"
            in result.err)
    assert gcp.mutating_requests() == []


def test_disabled_sqladmin_api_stops_with_the_enable_command(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    gcp.disable_service(PROJECT, "sqladmin.googleapis.com")
    result = collab(*bootstrap_args())
    assert result.code == 1
    assert f"gcloud services enable sqladmin.googleapis.com --project {PROJECT}" in result.err
    assert "--yes" in result.err
    assert gcp.mutating_requests() == []


@runs_grants
def test_disabled_sqladmin_api_is_enabled_with_yes(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    gcp.disable_service(PROJECT, "sqladmin.googleapis.com")
    result = collab(*bootstrap_args("--yes"))
    assert result.code == 0, result.err
    assert "sqladmin.googleapis.com" in gcp.world.projects[PROJECT].services
    assert gcp.instance(PROJECT, "zenml-metadata").state == "RUNNABLE"


@runs_grants
def test_concurrent_project_policy_edit_is_retried_and_survives(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    plan = action.plan(admin, make_request())
    read_count = _method_count(gcp, "cloudresourcemanager.projects.getIamPolicy")
    # Hold our first setIamPolicy long enough for another admin's edit to land first.
    gcp.inject("cloudresourcemanager.projects.setIamPolicy", status=None, times=1, latency=1.0)
    other = "user:carol@example.com"

    def concurrent_edit() -> None:
        while _method_count(gcp, "cloudresourcemanager.projects.getIamPolicy") <= read_count:
            threading.Event().wait(0.001)
        gcp.grant(PROJECT, "roles/viewer", other)

    thread = threading.Thread(target=concurrent_edit)
    thread.start()
    action.apply(admin, plan)
    thread.join(timeout=10)

    policy = gcp.world.projects[PROJECT].policy.bindings
    assert other in policy["roles/viewer"]
    assert all(m in policy["roles/cloudsql.client"] for m in MEMBERS)
    assert _method_count(gcp, "cloudresourcemanager.projects.setIamPolicy", 409) == 1


@runs_grants
@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("method", [
    "cloudresourcemanager.projects.testIamPermissions",
    "cloudresourcemanager.projects.getIamPolicy",
    "cloudresourcemanager.projects.setIamPolicy",
    "serviceusage.services.get",
    "sql.instances.get", "sql.instances.insert", "sql.operations.get",
    "sql.databases.insert", "sql.users.insert", "sql.users.list",
    "storage.buckets.get", "storage.buckets.insert",
    "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy",
])
def test_transient_errors_on_any_call_are_retried(
    gcp: FakeGCP, admin: GcpClients, method: str, status: int,
) -> None:
    gcp.inject(method, status=status, times=2)
    first = action.plan(admin, make_request())
    result = action.apply(admin, first)
    # Some reads (users.list) only happen on the re-run's plan, once the instance exists (its
    # collab.yaml records the store, as the CLI writes it).
    recorded = action.team_config(first, store_id=result.store_id)
    assert action.plan(admin, make_request(), recorded).changes == 0
    assert _method_count(gcp, method, status) == 2


@runs_grants  # logs in as collab-admin to set up the metadata store
def test_password_auth_keeps_passwords_out_of_collab_yaml(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    result = collab(*bootstrap_args("--db-auth", "password", "--json"))
    assert result.code == 0, result.err
    out = json.loads(result.out)
    handed = {p["member"]: p for p in out["passwords"]}
    assert set(handed) == {ALICE, BOB}  # the admin's own went to .collab/local.yaml
    inst = gcp.instance(PROJECT, "zenml-metadata")
    built_in = {u.name: u.password for u in inst.users.values() if u.type == "BUILT_IN"}
    assert built_in["alice"] == handed[ALICE]["password"]
    assert len(handed[ALICE]["password"]) >= 24 and "cloudsql_iam_authentication" not in (
        inst.flags())
    team_text = (repo / "collab.yaml").read_text()
    local = repo / ".collab" / "local.yaml"
    assert all(p["password"] not in team_text for p in out["passwords"])
    assert built_in["admin"] not in team_text
    assert yaml.safe_load(local.read_text())["metadata"]["password"] == built_in["admin"]
    assert file_mode(local) == 0o600
    policy = gcp.world.projects[PROJECT].policy.bindings
    assert ALICE not in policy.get("roles/cloudsql.instanceUser", [])
    # Built-in users have their privileges already: no grants; collab-admin only set up the
    # metadata store, whose id is in collab.yaml.
    assert out["plan"]["grants"] == [] and out["plan"]["store"]["action"] == "create"
    assert out["store_id"] and out["store_id"] in team_text


@runs_grants
def test_existing_broad_storage_role_is_reported_and_left_alone(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    gcp.grant(PROJECT, "roles/storage.admin", ALICE)
    plan = action.plan(admin, make_request())
    assert any(ALICE in w and "roles/storage.admin" in w for w in plan.warnings)
    action.apply(admin, plan)
    assert ALICE in gcp.world.projects[PROJECT].policy.bindings["roles/storage.admin"]


@runs_grants
def test_existing_instance_without_iam_flag_is_patched_keeping_other_flags(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    body = action.instance_body(make_request())
    body["settings"]["databaseFlags"] = [{"name": "max_connections", "value": "200"}]
    gcp.operation_polls["CREATE"] = 0
    from zenml_collab.infra.gcp import sqladmin

    sqladmin.insert_instance(admin.sqladmin, PROJECT, body)
    plan = action.plan(admin, make_request())
    assert plan.resource("sql_instance")[0].action == "update"
    action.apply(admin, plan)
    assert gcp.instance(PROJECT, "zenml-metadata").flags() == {
        "max_connections": "200", "cloudsql_iam_authentication": "on"}


def test_invalid_member_is_a_usage_error(collab: Callable[..., CliResult],
                                         gcp: FakeGCP) -> None:
    result = collab(*bootstrap_args(members=("group:team@example.com",)))
    assert result.code == 1 and "invalid member" in result.err
    assert gcp.mutating_requests() == []
