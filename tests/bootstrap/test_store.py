"""Bootstrap sets up the team's metadata store (schema and identity) and records its id in
``collab.yaml``, in the login it makes for the grants, so no member's join writes the id.

Runs through the real connector and the fake's TLS front on the test MariaDB.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.bootstrap.conftest import CliResult, bootstrap_args, mysql_root, runs_grants
from zenml_collab.config import load_team_config
from zenml_collab.testing.fake_gcp import FakeGCP


def _store_row() -> tuple[str, str] | None:
    """(store id, schema revision) of the team database on the MariaDB."""
    conn = mysql_root()
    try:
        with conn.cursor() as cur:
            if not cur.execute("SHOW TABLES IN `zenml` LIKE 'store_identity'"):
                return None
            cur.execute("SELECT store_id FROM `zenml`.store_identity")
            rows = cur.fetchall()
            assert len(rows) == 1
            cur.execute("SELECT version_num FROM `zenml`.alembic_version")
            (revision,) = cur.fetchone()
            return str(rows[0][0]), str(revision)
    finally:
        conn.close()


def _forget_store_id(repo: Path) -> None:
    """collab.yaml as a bootstrap from before this change left it: no metadata.store_id."""
    data = yaml.safe_load((repo / "collab.yaml").read_text())
    data["metadata"].pop("store_id")
    (repo / "collab.yaml").write_text(yaml.safe_dump(data))


@runs_grants
def test_bootstrap_initialises_the_store_and_records_its_id_in_collab_yaml(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    from zenml_collab.core.metadata.schema import HEAD_REVISION

    result = collab(*bootstrap_args("--json"))
    assert result.code == 0, result.err
    out = json.loads(result.out)
    row = _store_row()
    assert row is not None and row[1] == HEAD_REVISION
    assert out["store_id"] == row[0] and out["plan"]["store"]["action"] == "create"
    assert load_team_config(repo).metadata.store_id == row[0]


@runs_grants
def test_rerun_keeps_the_store_id_logs_in_nowhere_and_leaves_collab_yaml_alone(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    assert collab(*bootstrap_args()).code == 0
    written = (repo / "collab.yaml").read_bytes()
    row = _store_row()
    before = len(gcp.requests)
    again = collab(*bootstrap_args("--json"))
    assert again.code == 0, again.err
    plan = json.loads(again.out)["plan"]
    assert plan["store"] == {"database": "zenml", "action": "none", "store_id": row and row[0]}
    assert plan["grant_user"]["action"] == "none"
    # No login at all: no password set, no certificate asked for.
    assert [r.method_id for r in gcp.requests[before:] if r.mutating] == []
    assert (repo / "collab.yaml").read_bytes() == written and _store_row() == row


@runs_grants
def test_existing_store_keeps_its_id_when_collab_yaml_does_not_name_it(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    assert collab(*bootstrap_args()).code == 0
    row = _store_row()
    _forget_store_id(repo)  # e.g. a team bootstrapped before bootstrap recorded the id
    dry = json.loads(collab(*bootstrap_args("--dry-run", "--json")).out)["plan"]
    assert dry["store"]["action"] == "record" and dry["changes"] == 1
    again = collab(*bootstrap_args())
    assert again.code == 0, again.err
    assert "found the metadata store" in again.out
    assert _store_row() == row and row is not None
    assert load_team_config(repo).metadata.store_id == row[0]


@runs_grants
def test_database_holding_other_tables_is_refused_and_no_id_is_recorded(
    gcp: FakeGCP, collab: Callable[..., CliResult], repo: Path,
) -> None:
    assert collab(*bootstrap_args()).code == 0
    conn = mysql_root()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE `zenml`")
        cur.execute("CREATE DATABASE `zenml`")
        cur.execute("CREATE TABLE `zenml`.customers (id INT PRIMARY KEY)")
    conn.close()
    _forget_store_id(repo)
    result = collab(*bootstrap_args())
    assert result.code == 1
    assert "holds tables that are not a zenml-collab store" in result.err
    assert "Traceback" not in result.err
    assert load_team_config(repo).metadata.store_id is None
    assert _store_row() is None


def test_dry_run_lists_the_store_it_will_initialise(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    text = collab(*bootstrap_args("--dry-run"))
    assert text.code == 0, text.err
    assert "metadata store" in text.out and "zenml" in text.out
    assert gcp.mutating_requests() == []
