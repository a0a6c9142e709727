"""terraform/ is the declarative twin of `collab bootstrap`: same resources, same roles.

Providers cannot be downloaded here, so the module is compared with what
`bootstrap --dry-run --json` plans by parsing it (python-hcl2), and `terraform fmt -check`
runs when the binary exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from tests.bootstrap.conftest import CliResult, bootstrap_args
from zenml_collab.actions.bootstrap import BootstrapRequest
from zenml_collab.testing.fake_gcp import FakeGCP

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "terraform"
MODULE_FILES = ("main.tf", "compute.tf")  # compute.tf: bootstrap --compute vertex
GCS_DEFAULT_SOFT_DELETE_SECONDS = 7 * 24 * 3600
# The checkov findings deliberately accepted, each with its reason inline in terraform/.
ACCEPTED_FINDINGS = {"CKV_GCP_60", "CKV_GCP_62", "CKV_GCP_78", "CKV_GCP_84"}
# bootstrap's plan item -> the Terraform resource type creating it
TF_TYPES = {
    "service": "google_project_service",
    "sql_instance": "google_sql_database_instance",
    "sql_database": "google_sql_database",
    "sql_user": "google_sql_user",
    "bucket": "google_storage_bucket",
    "project": "google_project_iam_member",
    "bucket_binding": "google_storage_bucket_iam_member",
}


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def _load(name: str) -> dict[str, Any]:
    import hcl2

    with (TERRAFORM_DIR / name).open() as fh:
        return dict(_unquote(hcl2.load(fh)))


def _resources() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for block in [b for tf in MODULE_FILES for b in _load(tf).get("resource", [])]:
        for rtype, named in block.items():
            for name, body in named.items():
                out[(rtype, name)] = body
    return out


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in [b for tf in MODULE_FILES for b in _load(tf).get("locals", [])]:
        merged.update(block)
    return merged


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    (inner,) = body[name]
    return dict(inner)


@pytest.fixture
def planned(collab: Callable[..., CliResult], gcp: FakeGCP) -> Callable[[str], dict[str, Any]]:
    def run(db_auth: str) -> dict[str, Any]:
        result = collab(*bootstrap_args("--dry-run", "--json", "--db-auth", db_auth))
        assert result.code == 0, result.err
        return dict(json.loads(result.out)["plan"])

    return run


@pytest.mark.parametrize("db_auth", ["iam", "password"])
def test_terraform_declares_the_resource_types_bootstrap_plans(
    planned: Callable[[str], dict[str, Any]], db_auth: str,
) -> None:
    plan = planned(db_auth)
    wanted = {TF_TYPES[r["type"]] for r in plan["resources"]} | {TF_TYPES["service"]}
    wanted |= {TF_TYPES["project" if b["scope"] == "project" else "bucket_binding"]
               for b in plan["bindings"]}
    declared = {rtype for rtype, _ in _resources()}
    # Declared only with var.compute = "vertex" (tests/bootstrap/test_terraform_compute.py).
    compute_only = {"google_artifact_registry_repository", "google_service_account",
                    "google_artifact_registry_repository_iam_member",
                    "google_service_account_iam_member"}
    assert declared - {"random_password"} - compute_only == wanted
    users = _resources()[("google_sql_user", db_auth)]
    assert f'var.db_auth == "{db_auth}"' in users["for_each"]
    user_types = {r["settings"]["type"] for r in plan["resources"] if r["type"] == "sql_user"}
    assert user_types <= ({"BUILT_IN"} if db_auth == "password"
                          else {"CLOUD_IAM_USER", "CLOUD_IAM_SERVICE_ACCOUNT"})


@pytest.mark.parametrize("db_auth", ["iam", "password"])
def test_terraform_grants_the_same_roles_at_the_same_level(
    planned: Callable[[str], dict[str, Any]], db_auth: str,
) -> None:
    plan = planned(db_auth)
    local = _locals()
    project_roles = {b["role"] for b in plan["bindings"] if b["scope"] == "project"}
    bucket_roles = {b["role"] for b in plan["bindings"] if b["scope"] == "bucket"}
    assert set(local["project_roles_by_auth"][db_auth]) == project_roles
    assert set(local["bucket_roles"]) == bucket_roles
    assert not {r for r in local["project_roles_by_auth"][db_auth] if r.startswith("roles/storage")}
    assert set(local["services"]) == {s["name"] for s in plan["services"]}
    resources = _resources()
    assert "local.project_bindings" in resources[("google_project_iam_member", "member")][
        "for_each"]
    assert "google_storage_bucket.artifacts" in resources[
        ("google_storage_bucket_iam_member", "member")]["bucket"]


def test_terraform_instance_and_bucket_settings_match_the_plan(
    planned: Callable[[str], dict[str, Any]],
) -> None:
    plan = planned("iam")
    by_type = {r["type"]: r for r in plan["resources"]}
    resources = _resources()
    instance = resources[("google_sql_database_instance", "metadata")]
    planned_instance = by_type["sql_instance"]["settings"]
    assert instance["database_version"] == planned_instance["databaseVersion"]
    settings = _block(instance, "settings")
    backup = _block(settings, "backup_configuration")
    assert backup["enabled"] is planned_instance["settings"]["backupConfiguration"]["enabled"]
    ip = _block(settings, "ip_configuration")
    assert "authorized_networks" not in ip
    assert planned_instance["settings"]["ipConfiguration"]["authorizedNetworks"] == []
    assert ip["ssl_mode"] == planned_instance["settings"]["ipConfiguration"]["sslMode"] == (
        "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")
    (flags,) = settings["dynamic"]
    flag = _block(flags["database_flags"], "content")
    assert [flag["name"]] == [f["name"] for f in planned_instance["settings"]["databaseFlags"]]

    database = resources[("google_sql_database", "zenml")]
    assert database["charset"] == by_type["sql_database"]["settings"]["charset"]
    assert database["collation"] == by_type["sql_database"]["settings"]["collation"]

    bucket = resources[("google_storage_bucket", "artifacts")]
    planned_bucket = by_type["bucket"]["settings"]
    assert bucket["uniform_bucket_level_access"] is planned_bucket["uniform_bucket_level_access"]
    assert bucket["public_access_prevention"] == planned_bucket["public_access_prevention"]
    # Google's default soft delete for new buckets, which bootstrap's bucket gets: written out
    # in terraform/ as the answer to checkov's versioning check (CKV_GCP_78).
    soft_delete = _block(bucket, "soft_delete_policy")
    assert soft_delete["retention_duration_seconds"] == GCS_DEFAULT_SOFT_DELETE_SECONDS
    assert "versioning" not in bucket
    assert "-zenml-artifacts" in _locals()["bucket"] and plan["bucket"].endswith(
        "-zenml-artifacts")


def test_terraform_variable_defaults_match_bootstrap_defaults() -> None:
    variables: dict[str, Any] = {}
    for block in _load("variables.tf")["variable"]:
        variables.update(block)
    assert {"project", "region", "instance", "bucket", "members", "db_auth"} <= set(variables)
    defaults = {f.name: f.default for f in fields(BootstrapRequest)}
    for name in ("instance", "tier", "database", "db_auth"):
        assert variables[name]["default"] == defaults[name], name
    assert variables["bucket"]["default"] is None and defaults["bucket"] is None


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_files_are_formatted(tmp_path: Path) -> None:
    result = subprocess.run(["terraform", "fmt", "-check", "-diff", str(TERRAFORM_DIR)],
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                                 "TF_CLI_CONFIG_FILE": "/dev/null"})
    assert result.returncode == 0, result.stdout + result.stderr


def _checkov() -> str:
    path = os.environ.get("COLLAB_TEST_CHECKOV")
    if path:
        assert Path(path).is_file(), f"COLLAB_TEST_CHECKOV={path} does not exist (scripts/test " \
                                     "installs it)"
        return path
    found = shutil.which("checkov")
    if found is None:
        pytest.skip("checkov is not installed: run under scripts/test, which installs it")
    return found


def test_terraform_passes_checkov_with_a_reason_for_every_accepted_finding(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [_checkov(), "-d", str(TERRAFORM_DIR), "--framework", "terraform", "--skip-download",
         "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=300,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)})
    elapsed = time.monotonic() - started
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and result.returncode == 0, failed
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= 10
    passed = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert "CKV_GCP_6" in passed  # Cloud SQL requires SSL: client certificates
    skipped = {c["check_id"]: c["check_result"].get("suppress_comment", "")
               for c in report["results"]["skipped_checks"]}
    assert set(skipped) == ACCEPTED_FINDINGS
    for check_id, reason in skipped.items():
        assert len(reason.split()) >= 8, f"{check_id} is skipped without a real reason"
    assert elapsed < 60, f"checkov took {elapsed:.0f}s"
