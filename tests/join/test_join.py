"""`collab join` with the in-process connector against the fake GCP, MariaDB and fake-gcs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.join.conftest import CONNECTION, Team
from zenml_collab.config import file_mode, load_local_config, load_team_config
from zenml_collab.testing.repos import git

EXAMPLES = resources.files("zenml_collab.examples")


def collab(cwd: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """The real `collab` entry point in a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", "from zenml_collab.cli.main import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})})


def run_script(clone: Path, script: str, env: dict[str, str]) -> str:
    shutil.copyfile(str(EXAMPLES / script), clone / script)
    done = subprocess.run([sys.executable, script], cwd=clone, capture_output=True, text=True,
                          env={**os.environ, "COLLAB_NO_BROWSER": "1", "COLUMNS": "160", **env},
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def tracked_text(root: Path) -> str:
    names = git(root, "ls-files").split()
    return "".join((root / n).read_text(errors="replace") for n in names if (root / n).is_file())


def test_join_without_credentials_prints_the_login_command(team_no_sql_backend: Team) -> None:
    repo = team_no_sql_backend.repo("nobody")
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    done = subprocess.run(
        [sys.executable, "-c", "from zenml_collab.cli.main import main; main()", "join"],
        cwd=repo, capture_output=True, text=True, timeout=120, env={**env, "NO_GCE_CHECK": "True"})
    assert done.returncode == 3, done.stderr
    assert "no Google credentials found" in done.stderr
    assert "gcloud auth application-default login" in done.stderr
    assert not (repo / ".collab").exists()


@pytest.mark.parametrize(("project_roles", "bucket_roles", "permission", "role", "command"), [
    (("roles/cloudsql.instanceUser",), ("roles/storage.objectAdmin",
                                        "roles/storage.legacyBucketReader"),
     "cloudsql.instances.connect", "roles/cloudsql.client", "gcloud projects add-iam-policy-binding"),
    (("roles/cloudsql.client", "roles/cloudsql.instanceUser"), ("roles/storage.legacyBucketReader",),
     "storage.objects.create", "roles/storage.objectAdmin",
     "gcloud storage buckets add-iam-policy-binding gs://"),
], ids=["no-cloudsql-client", "no-bucket-object-admin"])
def test_member_missing_a_role_is_refused_with_the_admin_command_and_nothing_changes(
    team_no_sql_backend: Team, project_roles: tuple[str, ...], bucket_roles: tuple[str, ...],
    permission: str, role: str, command: str,
) -> None:
    team = team_no_sql_backend
    member = team.member("carol", roles=project_roles, bucket_roles=bucket_roles, db_user=False)
    repo = team.repo("carol")
    before = len(team.fake.mutating_requests())
    done = collab(repo, "join", "--connector", "python", env=member.env)
    assert done.returncode == 3, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert permission in err and role in err
    assert f"{command}" in err and f"--member={member.principal} --role={role}" in err
    assert not (repo / ".collab").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert len(team.fake.mutating_requests()) == before


def test_join_dry_run_checks_everything_and_changes_nothing(team: Team) -> None:
    member = team.member("dave")
    repo = team.repo("dave")
    done = collab(repo, "join", "--connector", "python", "--dry-run", "--json", env=member.env)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["member"] == member.principal and plan["db_user"] == member.login
    assert any("local.yaml" in change for change in plan["changes"])
    human = collab(repo, "join", "--connector", "python", "--dry-run", env=member.env)
    assert human.returncode == 0, human.stderr
    assert "would write .collab/local.yaml (connector python)" in human.stdout
    assert f"you are {member.principal}" in human.stdout
    assert not (repo / ".collab").exists()
    assert not [r for r in team.fake.mutating_requests() if "probe" in r.path]


@pytest.mark.mysql
def test_python_connector_join_verifies_both_stores_and_a_second_join_changes_nothing(
    team: Team,
) -> None:
    member = team.member("erin")
    repo = team.repo("erin")
    first = collab(repo, "join", "--connector", "python", "--json", env=member.env)
    assert first.returncode == 0, first.stdout + first.stderr
    result = json.loads(first.stdout)
    assert result["schema"]["state"] == "current" and not result["unchanged"]
    assert result["proxy"] is None and result["artifacts"] == f"gs://{team.bucket}/artifacts"

    local_file = repo / ".collab" / "local.yaml"
    assert file_mode(local_file) == 0o600
    local = load_local_config(repo)
    assert local.connector == "python" and local.credentials_file == str(member.key_file)
    assert local.metadata is not None and local.metadata.kind == "cloudsql"
    assert (local.metadata.instance, local.metadata.username) == (CONNECTION, member.login)
    assert local.metadata.password is None
    # The probe object is gone again; nothing secret or personal reached a tracked file.
    objects = [o for o in team.fake.requests if o.method == "DELETE" and ".collab-probe-" in o.path]
    assert len(objects) == 1 and objects[0].status in (200, 204)
    # Joining leaves no untracked or changed file: .collab/ is ignored in .git/info/exclude,
    # and bootstrap, which set up the store, recorded its id in the committed collab.yaml.
    assert git(repo, "status", "--porcelain") == ""
    assert "commit it" not in first.stdout and team.store_id is not None
    assert load_team_config(repo).metadata.store_id == team.store_id
    assert ".collab/" in (repo / ".git" / "info" / "exclude").read_text()
    assert member.email not in tracked_text(repo) and "key" not in git(repo, "ls-files")

    written = local_file.read_bytes()
    second = collab(repo, "join", env=member.env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already joined" in second.stdout and "nothing changed" in second.stdout
    assert local_file.read_bytes() == written


@pytest.mark.mysql
def test_first_join_of_a_team_bootstrapped_before_store_ids_creates_the_store_and_records_it(
    team: Team,
) -> None:
    team.store_by_bootstrap = False  # an older bootstrap left the database empty
    member = team.member("ida")
    repo = team.repo("ida")
    first = collab(repo, "join", "--connector", "python", "--json", env=member.env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["schema"]["state"] == "current"
    assert load_team_config(repo).metadata.store_id is not None
    # Only the member whose join created the store records its id (and commits it).
    assert git(repo, "status", "--porcelain") == "M collab.yaml"
    assert "commit it" in first.stdout


@pytest.mark.mysql
@pytest.mark.slow
def test_member_b_gets_cache_hits_from_member_a_after_both_joined(team: Team) -> None:
    alice, bob = team.member("alice"), team.member("bob")
    alice_repo = team.repo("alice")
    joined = collab(alice_repo, "join", "--connector", "python", env=alice.env)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    # The success summary says who joined, where both stores are, and what to run next.
    assert f"member:         {alice.principal}" in joined.stdout
    assert f"cloudsql://{CONNECTION}/{team.database}" in joined.stdout
    assert "(probe object written, read, deleted)" in joined.stdout
    assert "next: `collab pipelines list`, `collab runs list`" in joined.stdout
    run_script(alice_repo, "member_a.py", alice.env)
    git(alice_repo, "add", "pipelines")
    git(alice_repo, "commit", "-q", "-m", "Pipeline A")
    git(alice_repo, "push", "-q", "origin", "main")

    bob_repo = team.repo("bob")
    joined = collab(bob_repo, "join", "--connector", "python", env=bob.env)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    run_script(bob_repo, "member_b.py", bob.env)

    runs = collab(bob_repo, "runs", "list", "Pipeline B", env=bob.env)
    assert runs.returncode == 0, runs.stderr
    code = ("from zenml_collab import Repository; import json; "
            "print(json.dumps(Repository().latest_run('Pipeline B').statuses))")
    done = subprocess.run([sys.executable, "-c", code], cwd=bob_repo, capture_output=True,
                          text=True, env={**os.environ, **bob.env}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"datasource": "cached", "split": "cached",
                                       "preprocesser": "cached", "trainer": "executed",
                                       "evaluator": "executed"}
    # Both members logged in to the database as themselves, through the connector.
    assert team.fake.tls_front.connections >= 2


@pytest.mark.mysql
def test_without_docker_join_falls_back_to_the_in_process_connector(
    team: Team, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zenml_collab.actions.join import JoinRequest, JoinResult, join
    from zenml_collab.infra.proxy import connect_docker

    member = team.member("kim")
    repo = team.repo("kim")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(member.key_file))
    from zenml_collab.infra.proxy import find_free_port

    # A TCP address nothing listens on (docker-py leaks the socket of a failed unix connect).
    no_daemon = f"tcp://127.0.0.1:{find_free_port()}"
    result = join(JoinRequest(start=repo), docker=lambda: connect_docker(no_daemon))
    assert isinstance(result, JoinResult)
    assert result.plan.connector == "python" and result.proxy is None
    assert result.plan.connector_reason.startswith("docker is not available")
    assert load_local_config(repo).connector == "python"


@pytest.mark.mysql
def test_member_without_a_database_user_is_told_what_the_admin_runs_and_gets_no_local_config(
    team: Team,
) -> None:
    member = team.member("liam", db_user=False)
    repo = team.repo("liam")
    done = collab(repo, "join", "--connector", "python", env=member.env)
    assert done.returncode == 3, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert f"the database refused '{member.login}'" in err
    assert "gcloud sql users create" in err and "--type=cloud_iam_service_account" in err
    assert not (repo / ".collab" / "local.yaml").exists()


def test_join_outside_a_team_repository_says_to_bootstrap_first(
    team_no_sql_backend: Team, tmp_path: Path,
) -> None:
    lone = tmp_path / "lone"
    git(tmp_path, "init", "-q", str(lone))
    (lone / "collab.yaml").write_text("version: 1\n")
    done = collab(lone, "join")
    assert done.returncode == 1
    assert "has no gcp section" in done.stderr and "collab bootstrap" in done.stderr


def test_proxy_start_before_a_proxy_join_says_to_join_first(team_no_sql_backend: Team) -> None:
    repo = team_no_sql_backend.repo("mia")
    done = collab(repo, "proxy", "start")
    assert done.returncode == 1
    assert "collab join --connector proxy" in done.stderr


@pytest.mark.mysql
def test_a_store_behind_this_version_is_verified_and_collab_db_upgrade_offered(
    team: Team, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlalchemy as sa

    from zenml_collab.actions.join import JoinRequest, JoinResult, join
    from zenml_collab.core.metadata.store import HEAD_REVISION, MetadataStore

    assert team.mysql is not None
    old = sa.create_engine(sa.URL.create("mysql+pymysql", username=team.mysql["user"],
                                         password=team.mysql["password"], host=team.mysql["host"],
                                         port=team.mysql["port"], database=team.database))
    MetadataStore(old).upgrade("0001")  # a teammate's older zenml-collab created the store
    old.dispose()
    member = team.member("nora")
    repo = team.repo("nora")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(member.key_file))
    result = join(JoinRequest(start=repo, connector="python"))
    assert isinstance(result, JoinResult)
    assert (result.schema.revision, result.schema.state) == ("0001", "behind")
    assert HEAD_REVISION != "0001" and not result.schema.initialised
    assert "collab db upgrade" in (result.schema.advice or "")
    assert result.next_steps[0] == "collab db upgrade"


@pytest.mark.mysql
def test_member_whose_database_user_was_never_granted_is_told_to_ask_for_regrant(
    team: Team,
) -> None:
    member = team.member("nora", granted=False)
    repo = team.repo("nora")
    done = collab(repo, "join", "--connector", "python", env=member.env)
    assert done.returncode == 3, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert f"the database refused '{member.login}' access to" in err
    assert "collab bootstrap ... --regrant" in err
    assert "Traceback" not in done.stderr
    assert not (repo / ".collab" / "local.yaml").exists()


@pytest.mark.parametrize("second_joins_before_pulling", [True, False])
def test_two_members_join_in_either_order_and_both_pull_cleanly(
    team: Team, second_joins_before_pulling: bool,
) -> None:
    first, second = team.member("fay"), team.member("gus")
    a, b = team.repo("fay"), team.repo("gus")
    joined = collab(a, "join", "--connector", "python", env=first.env)
    assert joined.returncode == 0, joined.stdout + joined.stderr
    if second_joins_before_pulling:
        joined = collab(b, "join", "--connector", "python", env=second.env)
        assert joined.returncode == 0, joined.stdout + joined.stderr
    # A member commits everything they see (the habit that collided before) and pushes.
    (a / "notes.md").write_text("fay's notes\n")
    git(a, "add", "-A")
    git(a, "commit", "-q", "-m", "fay: notes")
    git(a, "push", "-q", "origin", "main")
    assert ".gitignore" not in git(a, "ls-files").split()
    assert git(b, "pull", "-q", "--no-rebase", "origin", "main") == ""
    if not second_joins_before_pulling:
        joined = collab(b, "join", "--connector", "python", env=second.env)
        assert joined.returncode == 0, joined.stdout + joined.stderr
    assert git(b, "status", "--porcelain") == ""
    (b / "more.md").write_text("gus\n")
    git(b, "add", "-A")
    git(b, "commit", "-q", "-m", "gus: more")
    git(b, "push", "-q", "origin", "main")
    git(a, "pull", "-q", "--no-rebase", "origin", "main")
    assert (a / "more.md").exists() and git(a, "status", "--porcelain") == ""
