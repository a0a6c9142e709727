"""`collab config ...` against MariaDB and fake-gcs-server, through the real entry point."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from shared_helpers import MysqlLogin, collab, configure_mysql, git, git_repo, snapshot

from zenml_collab.config import file_mode
from zenml_collab.testing.fixtures_services import MySQLServer


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return git_repo(tmp_path / "repo")


@pytest.mark.mysql
def test_mysql_settings_are_split_between_team_and_member_files(
        repo: Path, mysql_login: MysqlLogin) -> None:
    done = configure_mysql(repo, mysql_login)
    assert done.returncode == 0, done.stderr
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    local = yaml.safe_load((repo / ".collab/local.yaml").read_text())
    store_id = team["metadata"].pop("store_id")  # the store's identity, checked by every command
    assert len(store_id) == 32
    assert team["metadata"] == {"kind": "mysql", "database": mysql_login.database}
    assert local["metadata"] == {"host": mysql_login.host, "port": mysql_login.port,
                                 "username": mysql_login.user, "password": mysql_login.password}
    assert file_mode(repo / ".collab/local.yaml") == 0o600
    assert ".collab/" in (repo / ".gitignore").read_text()
    assert "initialised an empty database" in done.stdout


@pytest.mark.mysql
def test_the_password_shows_up_in_no_committed_file_output_or_history(
        repo: Path, mysql_login: MysqlLogin) -> None:
    outputs = [configure_mysql(repo, mysql_login)]
    outputs.append(collab(repo, "config", "show"))
    outputs.append(collab(repo, "config", "validate"))
    outputs.append(collab(repo, "db", "status"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "configure the shared store")
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    assert "********" in outputs[1].stdout
    tracked = git(repo, "ls-files").split()
    assert "collab.yaml" in tracked and ".collab/local.yaml" not in tracked
    for text in [o.stdout + o.stderr for o in outputs] + [git(repo, "log", "-p", "--all")] + [
            (repo / name).read_text() for name in tracked]:
        assert mysql_login.password not in text


@pytest.mark.mysql
def test_show_names_the_layer_each_value_came_from(repo: Path, mysql_login: MysqlLogin) -> None:
    assert configure_mysql(repo, mysql_login).returncode == 0
    shown = collab(repo, "config", "show", env={"COLLAB_DB_PASSWORD": "from-the-env",
                                                 "COLLAB_ARTIFACT_URI": "gs://env-bucket/x"})
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
            for line in shown.stdout.splitlines() if line.count("│") >= 4}
    assert rows["metadata.kind"] == ["mysql", "team"]
    assert rows["metadata.host"] == [mysql_login.host, "local"]
    assert rows["metadata.password"] == ["********", "env"]
    assert rows["artifacts.uri"] == ["gs://env-bucket/x", "env"]
    assert "from-the-env" not in shown.stdout


@pytest.mark.mysql
def test_team_flag_puts_member_values_in_the_team_file_but_never_the_password(
        repo: Path, mysql_login: MysqlLogin) -> None:
    assert configure_mysql(repo, mysql_login, "--team").returncode == 0
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    local = yaml.safe_load((repo / ".collab/local.yaml").read_text())
    assert team["metadata"]["host"] == mysql_login.host
    assert "password" not in team["metadata"]
    assert local["metadata"] == {"password": mysql_login.password}


@pytest.mark.mysql
def test_local_flag_overrides_the_team_store_for_this_member_only(
        repo: Path, mysql_login: MysqlLogin) -> None:
    assert configure_mysql(repo, mysql_login).returncode == 0
    team_before = (repo / "collab.yaml").read_text()
    done = collab(repo, "config", "metadata", "set", "sqlite", "--local")
    assert done.returncode == 0, done.stderr
    assert (repo / "collab.yaml").read_text() == team_before
    shown = collab(repo, "config", "show").stdout
    assert "sqlite" in shown and mysql_login.host not in shown


@pytest.mark.mysql
def test_password_from_the_environment_is_used_but_not_written(
        repo: Path, mysql_login: MysqlLogin) -> None:
    done = collab(repo, "config", "metadata", "set", "mysql", "--host", mysql_login.host,
                  "--port", str(mysql_login.port), "--username", mysql_login.user,
                  "--database", mysql_login.database,
                  env={"COLLAB_DB_PASSWORD": mysql_login.password})
    assert done.returncode == 0, done.stderr
    assert mysql_login.password not in (repo / ".collab/local.yaml").read_text()


@pytest.mark.mysql
def test_password_flag_works_with_a_warning(repo: Path, mysql_login: MysqlLogin) -> None:
    done = collab(repo, "config", "metadata", "set", "mysql", "--host", mysql_login.host,
                  "--port", str(mysql_login.port), "--username", mysql_login.user,
                  "--database", mysql_login.database, "--passwd", mysql_login.password)
    assert done.returncode == 0, done.stderr
    assert "shell history" in done.stderr
    assert mysql_login.password not in done.stdout + done.stderr


@pytest.mark.mysql
def test_a_missing_database_is_created(repo: Path, mysql_login: MysqlLogin,
                                       mysql_server: MySQLServer) -> None:
    name = f"t_new_{uuid.uuid4().hex[:8]}"
    login = MysqlLogin(mysql_login.host, mysql_login.port, mysql_login.user,
                       mysql_login.password, name)
    try:
        done = configure_mysql(repo, login)
        assert done.returncode == 0, done.stderr
        conn = mysql_server.connect(name)
        with conn.cursor() as cursor:
            cursor.execute("SELECT version_num FROM alembic_version")
            assert cursor.fetchone() is not None
        conn.close()
    finally:
        conn = mysql_server.connect()
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.mark.mysql
def test_a_user_who_may_not_create_the_database_is_told_which_grant_is_missing(
        repo: Path, mysql_login: MysqlLogin, mysql_server: MySQLServer) -> None:
    user, password = f"u{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    conn = mysql_server.connect()
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        login = MysqlLogin(mysql_login.host, mysql_login.port, user, password, "t_not_allowed")
        done = configure_mysql(repo, login)
        assert done.returncode == 3
        assert "may not create the database 't_not_allowed'" in done.stderr
        assert "GRANT" in done.stderr and "Traceback" not in done.stderr
        assert snapshot(repo) == {"collab.yaml": b"<absent>", ".collab/local.yaml": b"<absent>"}
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'%'")
        conn.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BAD_INPUTS = {
    "bad instance name": (["config", "metadata", "set", "cloudsql", "--instance", "not-valid",
                           "--database", "zenml", "--iam-user", "a@example.com"], 1,
                          "project:region:instance"),
    "unreachable host": (["config", "metadata", "set", "mysql", "--host", "127.0.0.1",
                          "--port", "{closed}", "--username", "u", "--database", "d",
                          "--password-stdin"], 4, "cannot reach MySQL"),
    "wrong password": (["config", "metadata", "set", "mysql", "--host", "{host}", "--port",
                        "{port}", "--username", "{user}", "--database", "{db}",
                        "--password-stdin"], 3, "refused the login"),
    "gs uri without bucket": (["config", "artifacts", "set", "gs:///prefix"], 1,
                              "does not name a valid bucket"),
    "unknown kind": (["config", "metadata", "set", "postgres", "--host", "h"], 2,
                     "No such command"),
    "unsupported scheme": (["config", "artifacts", "set", "s3://bucket/x"], 1,
                           "unsupported artifact store"),
}


@pytest.mark.mysql
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_leaves_the_config_files_unchanged(
        case: str, repo: Path, mysql_login: MysqlLogin) -> None:
    assert configure_mysql(repo, mysql_login).returncode == 0
    before = snapshot(repo)
    args, code, message = BAD_INPUTS[case]
    args = [a.format(closed=_closed_port(), host=mysql_login.host, port=mysql_login.port,
                     user=mysql_login.user, db=mysql_login.database) for a in args]
    done = collab(repo, *args, input="not-the-password\n")
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert snapshot(repo) == before


@pytest.mark.gcs
def test_artifact_uri_is_verified_and_written_to_the_team_file(
        repo: Path, gcs_bucket: str) -> None:
    done = collab(repo, "config", "artifacts", "set", f"gs://{gcs_bucket}/team/")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load((repo / "collab.yaml").read_text())["artifacts"] == {
        "uri": f"gs://{gcs_bucket}/team"}
    missing = collab(repo, "config", "artifacts", "set", "gs://no-such-bucket-here/x")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert yaml.safe_load((repo / "collab.yaml").read_text())["artifacts"]["uri"] == (
        f"gs://{gcs_bucket}/team")


def test_validate_lists_every_problem_of_both_files(repo: Path) -> None:
    (repo / "collab.yaml").write_text(
        "metadata:\n  kind: oracle\n  password: secret\nartifacts:\n  urii: x\n")
    (repo / ".collab").mkdir()
    (repo / ".collab/local.yaml").write_text("proxy_port: 99999\nfavourite_colour: blue\n")
    (repo / ".collab/local.yaml").chmod(0o644)
    done = collab(repo, "config", "validate")
    assert done.returncode == 1
    for expected in ("collab.yaml: metadata.kind", "collab.yaml: artifacts.urii: unknown key",
                     "local.yaml: proxy_port", "local.yaml: favourite_colour: unknown key",
                     "chmod 600"):
        assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_validate_passes_a_clean_repository(repo: Path) -> None:
    done = collab(repo, "config", "validate")
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_without_a_terminal_a_missing_password_is_an_error_not_a_hang(repo: Path) -> None:
    done = collab(repo, "config", "metadata", "set", "mysql", "--host", "127.0.0.1",
                  "--username", "u", "--database", "d", input="")
    assert done.returncode == 1
    assert "no terminal" in done.stderr and "--password-stdin" in done.stderr
    assert not (repo / "collab.yaml").exists()


def test_cloudsql_keeps_the_instance_for_the_team_and_the_login_for_the_member(
        repo: Path) -> None:
    done = collab(repo, "config", "metadata", "set", "cloudsql", "--instance",
                  "my-proj:europe-west1:zenml-metadata", "--database", "zenml",
                  "--iam-user", "alice@example.com", "--no-verify")
    assert done.returncode == 0, done.stderr
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    local = yaml.safe_load((repo / ".collab/local.yaml").read_text())
    assert team["metadata"] == {"kind": "cloudsql", "database": "zenml",
                                "instance": "my-proj:europe-west1:zenml-metadata"}
    assert local["metadata"] == {"username": "alice"}
    shown = collab(repo, "config", "show").stdout
    assert "cloudsql" in shown and "iam" in shown


def test_switching_back_to_sqlite_drops_the_member_connection_details(repo: Path) -> None:
    assert collab(repo, "config", "metadata", "set", "cloudsql", "--instance",
                  "my-proj:europe-west1:i", "--database", "zenml", "--iam-user", "a@example.com",
                  "--no-verify").returncode == 0
    done = collab(repo, "config", "metadata", "set", "sqlite")
    assert done.returncode == 0, done.stderr
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    assert team.get("metadata", {}).get("kind", "sqlite") == "sqlite"  # sqlite is the default
    assert "instance" not in team.get("metadata", {})
    local = yaml.safe_load((repo / ".collab/local.yaml").read_text()) or {}
    assert "metadata" not in local


BOOTSTRAPPED = """\
gcp:
  project: team-proj
  region: europe-west1
  instance: team-proj:europe-west1:main
  database: zenml
  bucket: team-artifacts
metadata:
  kind: cloudsql
  instance: team-proj:europe-west1:main
  database: zenml
artifacts:
  uri: gs://team-artifacts/artifacts
"""


def test_in_a_bootstrapped_clone_metadata_set_changes_only_the_local_file_and_says_so(
        repo: Path) -> None:
    (repo / "collab.yaml").write_text(BOOTSTRAPPED)
    done = collab(repo, "config", "metadata", "set", "mysql", "--host", "127.0.0.1",
                  "--username", "me", "--database", "scratch", "--password-stdin",
                  "--no-verify", input="pw\n")
    assert done.returncode == 0, done.stderr
    assert (repo / "collab.yaml").read_text() == BOOTSTRAPPED
    local = yaml.safe_load((repo / ".collab/local.yaml").read_text())
    assert local["metadata"]["kind"] == "mysql" and local["metadata"]["database"] == "scratch"
    assert "local.yaml" in done.stdout and "--team" in done.stdout
    assert "collab.yaml is the team's" in done.stdout


def test_in_a_bootstrapped_clone_artifacts_set_changes_only_the_local_file_and_says_so(
        repo: Path) -> None:
    (repo / "collab.yaml").write_text(BOOTSTRAPPED)
    done = collab(repo, "config", "artifacts", "set", "my-artifacts")
    assert done.returncode == 0, done.stderr
    assert (repo / "collab.yaml").read_text() == BOOTSTRAPPED
    assert yaml.safe_load((repo / ".collab/local.yaml").read_text())["artifacts"] == {
        "uri": "my-artifacts"}
    assert "wrote" in done.stdout and "local.yaml" in done.stdout and "--team" in done.stdout


def test_team_flag_changes_a_bootstrapped_team_file(repo: Path) -> None:
    (repo / "collab.yaml").write_text(BOOTSTRAPPED)
    done = collab(repo, "config", "artifacts", "set", "team-folder", "--team")
    assert done.returncode == 0, done.stderr
    team = yaml.safe_load((repo / "collab.yaml").read_text())
    assert team["artifacts"] == {"uri": "team-folder"} and team["gcp"]["project"] == "team-proj"
    assert "collab.yaml" in done.stdout


@pytest.mark.parametrize("uri", ["s3://bucket/x", "gs://UPPER/x", "gs://a/x"])
def test_validate_refuses_artifact_uris_that_no_store_can_open(repo: Path, uri: str) -> None:
    (repo / "collab.yaml").write_text(f"artifacts:\n  uri: {uri}\n")
    done = collab(repo, "config", "validate")
    assert done.returncode == 1, done.stdout
    assert "artifacts.uri" in done.stderr and "Traceback" not in done.stderr
