"""`collab bootstrap --compute vertex` against the fake: the dry run lists the compute
resources, apply creates them with least privilege, a re-run changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.bootstrap.conftest import (
    ADMIN_MEMBER,
    ALICE,
    BOB,
    PROJECT,
    REGION,
    CliResult,
    bootstrap_args,
    runs_grants,
)
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.fake_gcp.registry import state_of

MEMBERS = (ALICE, BOB, ADMIN_MEMBER)
RUNNER_EMAIL = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
RUNNER = f"serviceAccount:{RUNNER_EMAIL}"
REPOSITORY = f"projects/{PROJECT}/locations/{REGION}/repositories/collab"
BUCKET = f"{PROJECT}-zenml-artifacts"
STORE_ROLES = {"roles/cloudsql.client", "roles/cloudsql.instanceUser"}


def test_dry_run_lists_the_compute_apis_repository_runner_and_roles_and_changes_nothing(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    result = collab(*bootstrap_args("--compute", "vertex", "--dry-run", "--json"))
    assert result.code == 0, result.err
    assert gcp.mutating_requests() == [] and not (repo / "collab.yaml").exists()
    plan = json.loads(result.out)["plan"]
    assert {"aiplatform.googleapis.com", "artifactregistry.googleapis.com"} <= {
        s["name"] for s in plan["services"]}
    resources = {(r["type"], r["name"]): r["action"] for r in plan["resources"]}
    assert resources[("artifact_repository", REPOSITORY)] == "create"
    assert resources[("service_account", RUNNER_EMAIL)] == "create"
    runner_user = [r for r in plan["resources"] if r["type"] == "sql_user"
                   and r["settings"]["member"] == RUNNER]
    assert [u["settings"]["type"] for u in runner_user] == ["CLOUD_IAM_SERVICE_ACCOUNT"]
    assert any(g["member"] == RUNNER for g in plan["grants"])  # the team database
    bindings = {(b["scope"], b["role"], b["member"]) for b in plan["bindings"]}
    runner = {(s, r) for s, r, m in bindings if m == RUNNER}
    assert runner == {("project", r) for r in STORE_ROLES} | {
        ("bucket", "roles/storage.objectAdmin"), ("bucket", "roles/storage.legacyBucketReader")}
    for member in MEMBERS:
        assert ("project", "roles/aiplatform.user", member) in bindings
        assert ("repository", "roles/artifactregistry.writer", member) in bindings
        assert ("service_account", "roles/iam.serviceAccountUser", member) in bindings
    assert plan["compute"] == {"backend": "vertex", "runner": RUNNER_EMAIL,
                               "registry": f"{REGION}-docker.pkg.dev/{PROJECT}/collab"}
    # The table a person reads lists the new resources too.
    text = collab(*bootstrap_args("--compute", "vertex", "--dry-run"))
    assert "artifact_repository" in text.out and "service_account" in text.out
    assert f"roles/iam.serviceAccountUser  {ALICE}  on {RUNNER_EMAIL}" in text.out


@runs_grants
def test_compute_vertex_applies_least_privilege_and_a_rerun_makes_no_mutating_call(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    first = collab(*bootstrap_args("--compute", "vertex", "--yes"))
    assert first.code == 0, first.err
    registry = state_of(gcp)
    assert REPOSITORY in registry.repositories
    assert registry.repositories[REPOSITORY].body["format"] == "DOCKER"
    assert RUNNER_EMAIL in registry.accounts

    project_policy = gcp.world.projects[PROJECT].policy.bindings
    runner_roles = {role for role, members in project_policy.items() if RUNNER in members}
    assert runner_roles == STORE_ROLES  # no project-wide storage role, no Vertex or IAM role
    for member in MEMBERS:
        assert member in project_policy["roles/aiplatform.user"]
        assert member not in project_policy.get("roles/artifactregistry.writer", [])
        assert member not in project_policy.get("roles/iam.serviceAccountUser", [])
    assert set(registry.repositories[REPOSITORY].policy.bindings) == {
        "roles/artifactregistry.writer"}
    assert set(registry.repositories[REPOSITORY].policy.bindings[
        "roles/artifactregistry.writer"]) == set(MEMBERS)
    on_runner = gcp.vertex.sa_policies[RUNNER_EMAIL].bindings
    assert set(on_runner) == {"roles/iam.serviceAccountUser"}
    assert set(on_runner["roles/iam.serviceAccountUser"]) == set(MEMBERS)
    bucket = gcp.storage.bucket(BUCKET)
    assert RUNNER in bucket.policy.bindings["roles/storage.objectAdmin"]
    inst = gcp.instance(PROJECT, "zenml-metadata")
    assert ("collab-runner@proj-a.iam", "CLOUD_IAM_SERVICE_ACCOUNT") in {
        (u.name, u.type) for u in inst.users.values()}

    team = yaml.safe_load((repo / "collab.yaml").read_text())
    assert team["compute"]["vertex"]["service_account"] == RUNNER_EMAIL
    assert RUNNER not in team["gcp"]["members"]  # a machine, not a teammate
    assert "collab image build --push" in first.out

    before = len(gcp.requests)
    again = collab(*bootstrap_args("--compute", "vertex", "--yes"))
    assert again.code == 0, again.err
    assert [r for r in gcp.requests[before:] if r.mutating] == []
    assert "everything is in place" in again.out


def test_compute_vertex_with_password_auth_is_refused_before_any_request(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab(*bootstrap_args("--compute", "vertex", "--db-auth", "password"))
    assert result.code == 1 and "--db-auth iam" in result.err
    assert gcp.mutating_requests() == []


@runs_grants
def test_after_bootstrap_compute_vertex_a_members_doctor_compute_checks_pass(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path, login: Callable[..., object],
) -> None:
    from zenml_collab.actions.doctor import DoctorContext, run_doctor
    from zenml_collab.testing.fake_gcp.registry import push_image

    assert collab(*bootstrap_args("--compute", "vertex", "--yes")).code == 0
    digest = push_image(gcp, PROJECT, REGION, "collab", "steps")
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    team["compute"]["image"] = f"{REGION}-docker.pkg.dev/{PROJECT}/collab/steps@{digest}"
    (repo / "collab.yaml").write_text(yaml.safe_dump(team))
    login(BOB.split(":", 1)[1])  # a member, with only what bootstrap granted
    report = run_doctor(lambda: DoctorContext(repo), only=["compute"])
    results = {r.id: (r.status, r.detail) for r in report.results if r.id.startswith("compute.")}
    assert len(results) == 5
    assert {k: v[0] for k, v in results.items()} == dict.fromkeys(results, "pass"), results
