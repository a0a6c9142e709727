"""Bootstrap grants each member's IAM database user its database (Cloud SQL gives it none).

The grants run through the real connector and the fake's TLS front on the test MariaDB, as
``collab-admin``; members then log in with IAM exactly as ``collab join`` sets them up.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bootstrap.conftest import (
    ADMIN_MEMBER,
    ALICE,
    BOB,
    PROJECT,
    REGION,
    CliResult,
    bootstrap_args,
    make_request,
    mysql_root,
    runs_grants,
)
from zenml_collab.actions import bootstrap as action
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.testing.fake_gcp import FakeGCP

MEMBERS = (ALICE, BOB, ADMIN_MEMBER)
BOB_EMAIL = BOB.partition(":")[2]
CONNECTION = f"{PROJECT}:{REGION}:zenml-metadata"


def _as_member(gcp: FakeGCP, email: str, root: Path, monkeypatch: pytest.MonkeyPatch,
               table: str) -> int | None:
    """Log in as ``email`` (IAM, through the connector) and create and fill ``table`` in the
    team database. Returns None on success, else the MySQL error code of the refusal. The
    caller's credentials are restored afterwards."""
    import sqlalchemy as sa

    from zenml_collab.config import MetadataConfig
    from zenml_collab.core.metadata.engine import create_engine_for

    before = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp.add_member(email)))
    engine = create_engine_for(MetadataConfig(kind="cloudsql", instance=CONNECTION,
                                              database="zenml", username=email, auth="iam"),
                               root)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (id INT PRIMARY KEY)"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (1)"))
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 1
        return None
    except sa.exc.OperationalError as exc:
        return int(exc.orig.args[0])
    finally:
        engine.dispose()
        del engine
        gc.collect()  # closes the connector and its event loop
        if before is not None:
            monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", before)


def _doctor_login_hint(gcp: FakeGCP, email: str, root: Path,
                       monkeypatch: pytest.MonkeyPatch) -> str:
    """The hint of `collab doctor`'s database login check, run as ``email`` in ``root``."""
    from zenml_collab.actions.doctor.context import DoctorContext
    from zenml_collab.config import LocalConfig, MetadataConfig, write_local_config
    from zenml_collab.errors import PermissionDeniedError

    before = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp.add_member(email)))
    write_local_config(root, LocalConfig(metadata=MetadataConfig(
        kind="cloudsql", instance=CONNECTION, database="zenml", auth="iam", username=email)))
    ctx = DoctorContext(root)
    try:
        with pytest.raises(PermissionDeniedError) as refused:
            ctx.db_login()
    finally:
        ctx.close()
        (root / ".collab" / "local.yaml").unlink()
        gc.collect()
        if before is not None:
            monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", before)
    assert "refused the database" in refused.value.message
    return refused.value.hint or ""


def _grant_admin_password(gcp: FakeGCP) -> str | None:
    user = gcp.instance(PROJECT, "zenml-metadata").users.get((action.GRANT_ADMIN_USER, "%"))
    return user.password if user else None


def _admin_api_changes(gcp: FakeGCP, since: int) -> list[str | None]:
    """Mutating calls after request number ``since``, but for the connector's certificate
    request (a POST that changes nothing)."""
    return [r.method_id for r in gcp.requests[since:]
            if r.mutating and r.method_id != "sql.connect.generateEphemeralCert"]


def _revoke(login: str) -> None:
    conn = mysql_root()
    with conn.cursor() as cur:
        cur.execute("REVOKE ALL PRIVILEGES ON `zenml`.* FROM %s@'%%'", (login,))
    conn.close()


@runs_grants
def test_member_logs_in_with_iam_and_creates_a_table_after_bootstrap_of_a_fresh_project(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = collab(*bootstrap_args())
    assert result.code == 0, result.err

    assert _as_member(gcp, BOB_EMAIL, repo, monkeypatch, "bob_probe") is None
    assert "grant bob: ALL PRIVILEGES on `zenml`.* (new user: " in result.out
    assert "granted 3 member(s) the database zenml" in result.out
    # The grant user's password was set for this run only and is written or shown nowhere.
    password = _grant_admin_password(gcp)
    assert password and len(password) >= 32
    assert password not in result.out + result.err
    for path in repo.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert password not in path.read_text(errors="replace"), path


@runs_grants
def test_rerun_after_grants_makes_no_mutating_request_and_plans_no_grant(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    assert collab(*bootstrap_args()).code == 0
    before = len(gcp.requests)
    again = collab(*bootstrap_args("--json"))
    assert again.code == 0, again.err
    assert [r.method_id for r in gcp.requests[before:] if r.mutating] == []
    plan = json.loads(again.out)["plan"]
    assert plan["grants"] == [] and plan["grant_user"]["action"] == "none"
    assert plan["changes"] == 0


def test_dry_run_lists_a_grant_for_each_new_member_user_and_changes_nothing(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    as_json = collab(*bootstrap_args("--dry-run", "--json"))
    assert as_json.code == 0, as_json.err
    plan = json.loads(as_json.out)["plan"]
    assert plan["grants"] == [
        {"member": m, "login": login, "database": "zenml", "reason": "new user",
         "action": "grant"}
        for m, login in zip(MEMBERS, ("alice", "bob", "admin"), strict=True)]
    assert plan["grant_user"] == {"name": "collab-admin", "action": "create"}
    text = collab(*bootstrap_args("--dry-run"))
    assert "ALL PRIVILEGES on `zenml`.* to 'alice'@'%'" in text.out
    assert gcp.mutating_requests() == []


@runs_grants
def test_regrant_repairs_a_run_interrupted_before_granting(
    gcp: FakeGCP, admin: GcpClients, collab: Callable[..., CliResult], repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupt(event: action.Progress) -> None:
        if event.step == "database grants":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        action.apply(admin, action.plan(admin, make_request()), interrupt)
    # The users exist now, so a plain re-run has nothing to grant: the member is locked out.
    # (It creates collab-admin to set up the metadata store the interrupted run did not.)
    again = collab(*bootstrap_args("--json"))
    assert again.code == 0 and json.loads(again.out)["plan"]["grants"] == []
    assert json.loads(again.out)["plan"]["store"]["action"] == "record"
    assert _as_member(gcp, BOB_EMAIL, repo, monkeypatch, "bob_probe") == 1044
    assert "collab bootstrap --regrant" in _doctor_login_hint(gcp, BOB_EMAIL, repo, monkeypatch)

    dry = json.loads(collab(*bootstrap_args("--regrant", "--dry-run", "--json")).out)["plan"]
    assert {(g["member"], g["reason"]) for g in dry["grants"]} == {(m, "regrant")
                                                                  for m in MEMBERS}
    # The re-run made collab-admin (for the store): this run sets a fresh password on it.
    assert dry["grant_user"]["action"] == "update"
    before = len(gcp.requests)
    result = collab(*bootstrap_args("--regrant"))
    assert result.code == 0, result.err
    assert _admin_api_changes(gcp, before) == ["sql.users.update"]
    assert _as_member(gcp, BOB_EMAIL, repo, monkeypatch, "bob_probe") is None


@runs_grants
def test_regrant_restores_a_grant_revoked_by_hand(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert collab(*bootstrap_args()).code == 0
    first_password = _grant_admin_password(gcp)
    _revoke("bob")
    assert _as_member(gcp, BOB_EMAIL, repo, monkeypatch, "bob_probe") == 1044

    dry = json.loads(collab(*bootstrap_args("--regrant", "--dry-run", "--json")).out)["plan"]
    assert dry["grant_user"]["action"] == "update" and len(dry["grants"]) == len(MEMBERS)
    before = len(gcp.requests)
    result = collab(*bootstrap_args("--regrant"))
    assert result.code == 0, result.err
    assert "grant bob: ALL PRIVILEGES on `zenml`.* (regrant: " in result.out
    assert _admin_api_changes(gcp, before) == ["sql.users.update"]
    assert _as_member(gcp, BOB_EMAIL, repo, monkeypatch, "bob_probe") is None
    assert _grant_admin_password(gcp) not in (None, first_password)


@runs_grants
def test_refused_grant_exits_3_naming_mysqls_error_and_the_regrant_command(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    # A collab-admin made by hand without the grant option: bootstrap only resets its password.
    conn = mysql_root()
    with conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'x'", (action.GRANT_ADMIN_USER,))
        cur.execute(f"GRANT ALL ON *.* TO `{action.GRANT_ADMIN_USER}`@'%'")
    try:
        result = collab(*bootstrap_args())
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (action.GRANT_ADMIN_USER,))
        conn.close()
    assert result.code == 3
    assert "cannot grant alice the database zenml: MySQL error 1044" in result.err
    assert "--regrant" in result.err and "cloudsqlsuperuser" in result.err


def test_password_auth_plans_no_grant_and_regrant_only_warns(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab(*bootstrap_args("--db-auth", "password", "--regrant", "--dry-run",
                                    "--json"))
    assert result.code == 0, result.err
    plan = json.loads(result.out)["plan"]
    # No grants; collab-admin is created only to set up the metadata store.
    assert plan["grants"] == [] and plan["grant_user"]["action"] == "create"
    assert plan["store"]["action"] == "create"
    assert any("--regrant has no effect" in w for w in plan["warnings"])
