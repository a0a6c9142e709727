"""Bootstrap against the fake: the admin's clients, a git repo, and the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gcp_client.conftest import (  # noqa: F401 - fixtures re-exported for these tests
    ADMIN,
    PROJECT,
    REGION,
    admin,
    clients_for,
    gcp,
    login,
)
from zenml_collab.actions.bootstrap import BootstrapRequest
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
