"""Bootstrap against the fake: the admin's clients, a git repo, and the CLI in-process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.gcp_client.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    ADMIN,
    PROJECT,
    REGION,
    admin,
    clients_for,
    login,
)
from tests.gcp_client.conftest import gcp as gcp_without_mysql  # noqa: F401 - used by `gcp`
from zenml_collab.actions.bootstrap import GRANT_ADMIN_USER, BootstrapRequest
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.repos import make_git_repo

ALICE = "user:alice@example.com"
BOB = "serviceAccount:bob@proj-a.iam.gserviceaccount.com"
ADMIN_MEMBER = f"serviceAccount:{ADMIN}"


def make_request(**over: object) -> BootstrapRequest:
    values: dict[str, object] = {"project": PROJECT, "region": REGION,
                                 "members": (ALICE, BOB, ADMIN_MEMBER)}
    values.update(over)
    return BootstrapRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    make_git_repo(root)
    monkeypatch.chdir(root)
    return root


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def collab(capsys: pytest.CaptureFixture[str], repo: Path,
           request: pytest.FixtureRequest) -> Callable[..., CliResult]:
    """``collab("bootstrap", ...)``: run the CLI in-process (the fake lives in this process),
    as ``ADMIN`` unless the test logs someone else in."""
    from zenml_collab.cli.main import main

    request.getfixturevalue("admin")  # logs ADMIN in

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def bootstrap_args(*extra: str, members: tuple[str, ...] = (ALICE, BOB, ADMIN_MEMBER)
                   ) -> list[str]:
    args = ["bootstrap", "--project", PROJECT, "--region", REGION]
    for member in members:
        args += ["--member", member]
    return [*args, *extra]


def mysql_root() -> Any:
    """A root connection to the test MariaDB (autocommit)."""
    import pymysql

    url = urlsplit(os.environ["COLLAB_TEST_MYSQL_URL"])
    return pymysql.connect(host=url.hostname, port=url.port or 3306,
                           user=unquote(url.username or "root"),
                           password=unquote(url.password or ""), autocommit=True)


def drop_leftover_grant_admin() -> None:
    """Drop the grant admin a killed bootstrap run may have left in the test MariaDB."""
    conn = mysql_root()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (GRANT_ADMIN_USER,))
    finally:
        conn.close()


@pytest.fixture
def gcp(gcp_without_mysql: FakeGCP) -> Iterator[FakeGCP]:  # noqa: F811 - the fixture
    """The fake with the test MariaDB behind its instances, when scripts/test provides one.

    The fake mirrors the users bootstrap creates into MariaDB (``collab-admin`` with the grant
    option, as Cloud SQL's cloudsqlsuperuser role has it) and drops them when it stops.
    """
    fake = gcp_without_mysql
    if not os.environ.get("COLLAB_TEST_MYSQL_URL"):
        yield fake
        return
    drop_leftover_grant_admin()
    fake.attach_mysql(os.environ["COLLAB_TEST_MYSQL_URL"])
    yield fake


@pytest.fixture
def with_mysql(gcp: FakeGCP) -> FakeGCP:
    """For tests whose bootstrap runs GRANTs (IAM auth): they need the MariaDB."""
    if gcp.mysql is None:
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run under scripts/test for MariaDB)")
    return gcp


def runs_grants(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test whose bootstrap applies with IAM auth: it runs GRANTs on the MariaDB."""
    return pytest.mark.mysql(pytest.mark.usefixtures("with_mysql")(test))
