"""One team on the fake Google Cloud, for the ``team`` benchmarks: an admin and two members.

The fake (:class:`~zenml_collab.testing.fake_gcp.FakeGCP`) runs in the benchmark's own process,
with the MariaDB of ``scripts/bench`` behind its Cloud SQL instances; the commands themselves
run as whole processes (``collab bootstrap``, ``collab join``, ``collab doctor``) with each
person's key file in ``GOOGLE_APPLICATION_CREDENTIALS``, exactly as a team would run them.

    with TeamWorld.start(workdir, mysql_url) as world:
        world.collab(world.admin, "bootstrap", ..., cwd=world.admin_repo)
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from benchmarks.harness import ProcessSample, run_process
from benchmarks.workspace import collab_argv

REGION = "europe-west1"
# Bootstrap's built-in user for the GRANTs (zenml_collab.actions.bootstrap.GRANT_ADMIN_USER).
GRANT_ADMIN_USER = "collab-admin"


@dataclass(frozen=True)
class Person:
    """Someone on the team: a service account of the project and its key file."""

    email: str
    key_file: Path

    @property
    def principal(self) -> str:
        return f"serviceAccount:{self.email}"


@dataclass
class TeamWorld:
    """The fake with one project, its owner and two members; scratch repos under ``root``."""

    fake: Any
    root: Path
    project: str
    database: str
    admin: Person
    members: tuple[Person, ...]
    mysql: dict[str, Any]
    base_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def start(cls, root: Path, mysql_url: str) -> Iterator[TeamWorld]:
        """Start the fake (MariaDB at ``mysql_url`` behind it) and stop it, whatever happens."""
        from zenml_collab.testing.fake_gcp import FakeGCP

        root.mkdir(parents=True, exist_ok=True)
        suffix = uuid.uuid4().hex[:8]
        # Names on the shared MariaDB (database, IAM logins) are unique per run, so a bench
        # never collides with a test or a previous bench that died before cleaning up.
        project = f"bench-{suffix}"
        fake = FakeGCP(workdir=root / "fake").start()
        mysql = _login(mysql_url)
        try:
            fake.attach_mysql(mysql_url)
            owner = f"admin-{suffix}@{project}.iam.gserviceaccount.com"
            fake.add_project(project, owner=owner)
            admin = Person(owner, fake.add_member(owner, project=project))
            members = tuple(
                Person(email, fake.add_member(email, project=project))
                for email in (f"{name}-{suffix}@{project}.iam.gserviceaccount.com"
                              for name in ("ana", "ben")))
            world = cls(fake, root, project, f"collab_bench_{suffix}", admin, members, mysql)
            world.base_env = world._environment()
            _drop_leftover_grant_admin(mysql)
            yield world
        finally:
            fake.stop()
            _drop_database(mysql, f"collab_bench_{suffix}")

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("COLLAB_", "GOOGLE_", "CLOUDSDK_"))}
        env.update(self.fake.env)
        env.update({
            "COLLAB_GCP_POLL_INTERVAL": "0.05",
            "COLLAB_GCP_RETRY_INITIAL": "0.01",
            # Never this machine's own gcloud login or project.
            "CLOUDSDK_CONFIG": str(self.root / "no-gcloud"),
            "COLLAB_NO_BROWSER": "1",
            "COLUMNS": "200",
        })
        return env

    def env_for(self, person: Person) -> dict[str, str]:
        return {**self.base_env, "GOOGLE_APPLICATION_CREDENTIALS": str(person.key_file)}

    def bootstrap_argv(self, repo: Path) -> list[str]:
        argv = [*collab_argv(), "bootstrap", "--project", self.project, "--region", REGION,
                "--database", self.database]
        for person in (self.admin, *self.members):
            argv += ["--member", person.principal]
        return [*argv, "--yes", "--dir", str(repo)]

    def collab(self, person: Person, *args: str, cwd: Path) -> ProcessSample:
        """Run ``collab ARGS`` as ``person`` in ``cwd``; raise with its output if it fails."""
        sample = run_process([*collab_argv(), *args], cwd=cwd, env=self.env_for(person))
        if sample.returncode != 0:
            raise CommandFailed(f"collab {' '.join(args)}", sample)
        return sample

    def admin_repo(self) -> Path:
        repo = self.root / "admin"
        _git(self.root, "init", "-q", "--initial-branch=main", str(repo))
        _identify(repo, "admin")
        return repo

    def clone(self, origin: Path, name: str) -> Path:
        """A member's clone of the admin's repository (collab.yaml committed there)."""
        _git(self.root, "clone", "-q", str(origin), name)
        path = self.root / name
        _identify(path, name)
        return path

    def mutating_requests(self, since: int = 0) -> int:
        return sum(1 for r in self.fake.requests[since:] if r.mutating)


class CommandFailed(RuntimeError):
    """A real command failed on the fakes: a product bug (or a fake gap) to report."""

    def __init__(self, what: str, sample: ProcessSample) -> None:
        super().__init__(f"{what} failed with exit code {sample.returncode}\n"
                         f"--- stdout\n{sample.stdout[-3000:]}\n--- stderr\n{sample.stderr[-3000:]}")
        self.sample = sample


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _identify(repo: Path, name: str) -> None:
    _git(repo, "config", "user.name", name)
    _git(repo, "config", "user.email", f"{name}@example.com")


def commit_all(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _login(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": unquote(parts.password or "")}


def _root(mysql: dict[str, Any]) -> Any:
    import pymysql

    return pymysql.connect(**mysql, autocommit=True, connect_timeout=10)


def _drop_leftover_grant_admin(mysql: dict[str, Any]) -> None:
    """Drop bootstrap's built-in admin user if a killed run left it in MariaDB.

    The fake creates it (with the grant option, as Cloud SQL's cloudsqlsuperuser role has it)
    and drops it when it stops, but only if it did not exist before: a leftover would be kept,
    with whatever rights it had.
    """
    conn = _root(mysql)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (GRANT_ADMIN_USER,))
    finally:
        conn.close()


def _drop_database(mysql: dict[str, Any], name: str) -> None:
    conn = _root(mysql)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()
