"""`collab bootstrap` CLI: defaults from the environment and gcloud's config, text output."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.bootstrap.conftest import ALICE, PROJECT, REGION, CliResult
from zenml_collab.testing.fake_gcp import FakeGCP


def test_project_and_region_come_from_the_environment(
    gcp: FakeGCP, collab: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", PROJECT)
    monkeypatch.setenv("CLOUDSDK_COMPUTE_REGION", REGION)
    result = collab("bootstrap", "--member", ALICE, "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)["plan"]
    assert (plan["project"], plan["region"]) == (PROJECT, REGION)
    assert plan["bucket"] == f"{PROJECT}-zenml-artifacts"


def test_project_and_region_come_from_gcloud_config(
    gcp: FakeGCP, collab: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = gcp.workdir / "gcloud"
    (config / "configurations").mkdir(parents=True)
    (config / "active_config").write_text("team\n")
    (config / "configurations" / "config_team").write_text(
        f"[core]\nproject = {PROJECT}\n\n[compute]\nregion = {REGION}\n")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(config))
    for name in ("CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_COMPUTE_REGION"):
        monkeypatch.delenv(name, raising=False)
    result = collab("bootstrap", "--member", ALICE, "--dry-run", "--json",
                    "--bucket", "team-art")
    assert result.code == 0, result.err
    plan = json.loads(result.out)["plan"]
    assert (plan["project"], plan["region"], plan["bucket"]) == (PROJECT, REGION, "team-art")


def test_missing_region_is_a_usage_error(
    gcp: FakeGCP, collab: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOUDSDK_COMPUTE_REGION", raising=False)
    result = collab("bootstrap", "--project", PROJECT, "--member", ALICE)
    assert result.code == 2 and "--region" in result.err
    assert gcp.mutating_requests() == []


def test_dry_run_text_lists_resources_and_bindings(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab("bootstrap", "--project", PROJECT, "--region", REGION, "--member", ALICE,
                    "--dry-run")
    assert result.code == 0, result.err
    assert "zenml-metadata" in result.out and "roles/storage.objectAdmin" in result.out
    assert "dry run:" in result.out and "none made" in result.out
    assert gcp.mutating_requests() == []
