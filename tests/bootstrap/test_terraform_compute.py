"""terraform/compute.tf is the twin of `collab bootstrap --compute vertex`: the same
resources, the same roles at the same level, the same defaults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest

from tests.bootstrap.conftest import CliResult, bootstrap_args
from tests.bootstrap.test_terraform import TF_TYPES, _load, _locals, _resources
from zenml_collab.actions.bootstrap import BootstrapRequest
from zenml_collab.testing.fake_gcp import FakeGCP

COMPUTE_TF_TYPES = {
    "artifact_repository": "google_artifact_registry_repository",
    "service_account": "google_service_account",
    "repository": "google_artifact_registry_repository_iam_member",
    "service_account_binding": "google_service_account_iam_member",
}


@pytest.fixture
def planned(collab: Callable[..., CliResult], gcp: FakeGCP) -> dict[str, Any]:
    result = collab(*bootstrap_args("--compute", "vertex", "--dry-run", "--json"))
    assert result.code == 0, result.err
    return dict(json.loads(result.out)["plan"])


def _scope_type(scope: str) -> str:
    return {"project": TF_TYPES["project"], "bucket": TF_TYPES["bucket_binding"],
            "repository": COMPUTE_TF_TYPES["repository"],
            "service_account": COMPUTE_TF_TYPES["service_account_binding"]}[scope]


def test_terraform_declares_every_resource_type_the_compute_plan_has(
        planned: dict[str, Any]) -> None:
    types = {**TF_TYPES, **COMPUTE_TF_TYPES}
    wanted = {types[r["type"]] for r in planned["resources"]} | {TF_TYPES["service"]}
    wanted |= {_scope_type(b["scope"]) for b in planned["bindings"]}
    assert {rtype for rtype, _ in _resources()} - {"random_password"} == wanted


def test_terraform_grants_the_runner_and_members_the_same_roles_at_the_same_level(
        planned: dict[str, Any]) -> None:
    local, resources = _locals(), _resources()
    runner = planned["compute"]["runner"]
    runner_bindings = {(b["scope"], b["role"]) for b in planned["bindings"]
                       if b["member"] == f"serviceAccount:{runner}"}
    # The runner's roles are a member's store roles (iam auth), nothing project-wide else.
    assert {r for s, r in runner_bindings if s == "project"} == set(
        local["project_roles_by_auth"]["iam"])
    assert {r for s, r in runner_bindings if s == "bucket"} == set(local["bucket_roles"])
    assert "local.runner_roles" in resources[("google_project_iam_member", "runner")]["for_each"]
    assert "google_storage_bucket.artifacts" in resources[
        ("google_storage_bucket_iam_member", "runner")]["bucket"]
    members = {(b["scope"], b["role"]) for b in planned["bindings"]
               if b["member"] != f"serviceAccount:{runner}"}
    compute_roles = {(s, r) for s, r in members if s in ("repository", "service_account")} | {
        ("project", r) for s, r in members if s == "project" and r == "roles/aiplatform.user"}
    assert compute_roles == {("project", local["member_compute_project_role"]),
                             ("repository", local["member_repository_role"]),
                             ("service_account", local["member_runner_role"])}
    assert "google_artifact_registry_repository.steps" in resources[
        ("google_artifact_registry_repository_iam_member", "writer")]["repository"]
    assert "google_service_account.runner" in resources[
        ("google_service_account_iam_member", "act_as")]["service_account_id"]
    services = {s["name"] for s in planned["services"]}
    assert set(local["services"]) | {"aiplatform.googleapis.com",
                                     "artifactregistry.googleapis.com"} == services
    assert "aiplatform.googleapis.com" in local["compute_services"]
    repo = resources[("google_artifact_registry_repository", "steps")]
    assert repo["format"] == "DOCKER"
    (repository,) = [r for r in planned["resources"] if r["type"] == "artifact_repository"]
    assert repository["settings"]["format"] == "DOCKER"
    user = resources[("google_sql_user", "runner")]
    assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"


def test_terraform_compute_variable_defaults_match_bootstrap_defaults() -> None:
    variables: dict[str, Any] = {}
    for block in _load("variables.tf")["variable"]:
        variables.update(block)
    defaults = {f.name: f.default for f in fields(BootstrapRequest)}
    for name in ("compute", "runner_account", "repository"):
        assert variables[name]["default"] == defaults[name], name
