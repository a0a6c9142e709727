"""Doctor on a repository without Google Cloud (SQLite + local artifacts): the repo checks,
secret scanning, the --fix of the ignore line, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zenml_collab.actions.doctor import DoctorContext, DoctorReport, run_doctor
from zenml_collab.testing.repos import TmpRepo, git, make_git_repo

LOCAL_NOT_APPLICABLE = {"credentials.found", "credentials.token", "credentials.clock",
                        "gcp.project", "gcp.api.sqladmin", "gcp.api.storage", "iam.project",
                        "sql.instance", "sql.iam_auth", "sql.user", "db.proxy", "db.port",
                        "bucket.exists", "bucket.security", "iam.bucket", "bucket.probe"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TmpRepo:
    from zenml_collab.actions.init import init_repo

    for name in ("COLLAB_DB_URL", "COLLAB_ARTIFACT_URI", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "repo"
    make_git_repo(root)
    (root / "collab.yaml").write_text("version: 1\n")
    init_repo(root)
    repo = TmpRepo(root)
    repo.commit("init")
    return repo


def doctor(root: Path, **kwargs: object) -> DoctorReport:
    return run_doctor(lambda: DoctorContext(root), **kwargs)  # type: ignore[arg-type]


def test_local_setup_passes_and_skips_the_cloud_checks_with_a_reason(repo: TmpRepo) -> None:
    report = doctor(repo.root)
    statuses = report.statuses()
    # A fresh repository has no recorded run to compare packages with.
    assert {i for i, s in statuses.items() if s == "skip"} == LOCAL_NOT_APPLICABLE | {
        "env.packages"}
    assert {i for i, s in statuses.items() if s != "skip"} == {
        "repo.git", "repo.config", "repo.ignored", "repo.secrets", "db.query", "db.schema"}
    assert all(r.status == "pass" for r in report.results if r.status != "skip")
    assert "no gcp section" in report.get("gcp.project").detail
    assert "SQLite" in report.get("db.proxy").detail
    assert report.exit_code == 0


def test_committed_key_file_is_reported_with_the_command_to_untrack_it(repo: TmpRepo) -> None:
    repo.gen({"keys/sa.json": '{"type": "service_account", "private_key_id": "'
                              + "ab12" * 10 + '", "private_key": "-----BEGIN PRIVATE KEY-----"}',
              "notes.md": "we never commit keys"})
    repo.commit("oops")
    result = doctor(repo.root, only=["repo.secrets"]).get("repo.secrets")
    assert result.status == "fail"
    assert "keys/sa.json" in result.detail and "notes.md" not in result.detail
    assert "git rm --cached keys/sa.json" in (result.fix or "")


def test_fix_ignores_the_local_dir_in_the_clone_only_and_the_check_then_passes(
        repo: TmpRepo) -> None:
    (repo.root / ".gitignore").write_text("*.pyc\n")
    first = doctor(repo.root, only=["repo.ignored"])
    assert first.get("repo.ignored").status == "fail" and first.exit_code == 1
    fixed = doctor(repo.root, only=["repo.ignored"], fix=True)
    assert fixed.get("repo.ignored").status == "pass"
    assert [(a.check_id, a.action, a.ok) for a in fixed.applied] == [
        ("repo.ignored", "ignore", True)]
    # collab.yaml is committed (a team's clone): the shared .gitignore stays as it was.
    assert (repo.root / ".gitignore").read_text() == "*.pyc\n"
    assert ".collab/" in (repo.root / ".git/info/exclude").read_text().splitlines()


def test_outside_any_repository_the_repo_checks_fail_with_how_to_start(tmp_path: Path) -> None:
    report = doctor(tmp_path, only=["repo"])
    assert report.get("repo.git").status == "fail"
    assert "git init" in (report.get("repo.git").fix or "")
    assert "collab init" in (report.get("repo.config").fix or "")


def test_cli_json_is_one_document_and_the_exit_code_is_the_reports(repo: TmpRepo) -> None:
    (repo.root / ".gitignore").write_text("")
    git(repo.root, "commit", "-qam", "drop the ignore line")
    done = repo.collab("doctor", "--json", "--check", "repo")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == 1
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id["repo.ignored"]["status"] == "fail"
    assert "collab doctor --fix" in by_id["repo.ignored"]["fix"]

    text = repo.collab("doctor", "--check", "repo", "--fix")
    assert text.returncode == 0, text.stdout + text.stderr
    assert "fixed repo.ignored" in text.stdout and "✔ pass  repo.ignored" in text.stdout


def test_connector_mode_skips_the_proxy_checks_with_the_reason(repo: TmpRepo) -> None:
    from zenml_collab.config import LocalConfig, MetadataConfig, write_local_config

    write_local_config(repo.root, LocalConfig(metadata=MetadataConfig(
        kind="cloudsql", instance="p:europe-west1:main", database="zenml", username="ana")))
    report = doctor(repo.root, only=["db.port"])
    for check_id in ("db.proxy", "db.port"):
        result = report.get(check_id)
        assert result.status == "skip" and "connector mode" in result.detail


def test_a_local_config_readable_by_others_is_a_warning_with_chmod(repo: TmpRepo) -> None:
    local = repo.root / ".collab" / "local.yaml"
    local.write_text("version: 1\n")
    local.chmod(0o644)
    result = doctor(repo.root, only=["repo.config"]).get("repo.config")
    assert result.status == "warn" and f"chmod 600 {local}" in (result.fix or "")


def test_init_in_a_clone_of_a_committed_team_repo_ignores_locally_not_in_gitignore(
        tmp_path: Path) -> None:
    from zenml_collab.actions.init import init_repo
    from zenml_collab.testing.repos import git, make_git_repo

    root = tmp_path / "clone"
    make_git_repo(root)
    (root / "collab.yaml").write_text("artifacts:\n  uri: team-artifacts\n")
    git(root, "add", "collab.yaml")
    git(root, "commit", "-q", "-m", "team")
    result = init_repo(root)
    assert result.gitignore_updated == ".git/info/exclude"
    assert not (root / ".gitignore").exists()
    assert git(root, "status", "--porcelain") == ""
    assert doctor(root, only=["repo.ignored"]).get("repo.ignored").status == "pass"


def test_init_of_a_new_team_repo_writes_the_gitignore_to_commit(tmp_path: Path) -> None:
    from zenml_collab.actions.init import init_repo
    from zenml_collab.testing.repos import make_git_repo

    root = tmp_path / "new"
    make_git_repo(root)
    assert init_repo(root).gitignore_updated == ".gitignore"
    assert ".collab/" in (root / ".gitignore").read_text().splitlines()
    assert init_repo(root).gitignore_updated is None
