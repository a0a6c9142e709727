"""What the checks share: settings, credentials, clients, and answers several checks need.

Everything is built lazily and at most once, under a lock per item, so concurrent checks that
need the same thing (the instance resource, a database login) share one request. A failure is
remembered too: every check asking again gets the same exception. Collaborators are passed in,
so tests give the real clients pointed at the fake.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zenml_collab.actions.doctor.model import NotApplicable
from zenml_collab.config import GcpConfig, Settings, load_settings
from zenml_collab.errors import CollabError

if TYPE_CHECKING:
    from docker import DockerClient

    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.infra.gcp.clients import GcpClients
    from zenml_collab.infra.gcp.credentials import FoundCredentials

T = TypeVar("T")


@dataclass(frozen=True)
class TokenCheck:
    """A fresh token: who it belongs to, when it expires, and the token server's clock."""

    account: str | None
    expiry: datetime | None
    server_date: datetime | None  # the Date header of the token endpoint's answer
    local_date: datetime  # our clock when that answer arrived


@dataclass(frozen=True)
class DbLogin:
    """A successful login to the metadata database."""

    version: str
    user: str
    url: str


def _default_find_credentials() -> FoundCredentials:
    from zenml_collab.infra.gcp.credentials import find_credentials

    return find_credentials()


def _default_clients(found: FoundCredentials, project: str) -> GcpClients:
    from zenml_collab.infra.gcp.clients import GcpClients
    from zenml_collab.infra.gcp.retry import RetryPolicy

    # Doctor reports; it does not wait out an outage: one retry of a 5xx at most.
    return GcpClients.from_found(found, project, retry=RetryPolicy(attempts=2, initial=0.2))


def _default_docker() -> DockerClient:
    from zenml_collab.infra.proxy import connect_docker

    return connect_docker()


class DoctorContext:
    """Lazily built collaborators for one doctor run (see the module docstring).

    ``start`` is the directory doctor runs in; ``member`` (``user:x@y``) makes the IAM and
    database-user checks evaluate another member's bindings (for an admin).
    """

    def __init__(self, start: Path | None = None, *, member: str | None = None,
                 env: dict[str, str] | None = None,
                 find_credentials: Callable[[], FoundCredentials] = _default_find_credentials,
                 make_clients: Callable[[FoundCredentials, str], GcpClients] = _default_clients,
                 docker: Callable[[], DockerClient] = _default_docker) -> None:
        self.start = (start or Path.cwd()).resolve()
        self.member_override = member
        self.env = dict(os.environ) if env is None else env
        self._find_credentials = find_credentials
        self._make_clients = make_clients
        self._docker = docker
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, tuple[bool, Any]] = {}
        self._closers: list[Callable[[], None]] = []

    # -- memo -------------------------------------------------------------------------------
    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per context; its value (or exception) is shared by all callers."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (True, build())
                except BaseException as exc:
                    self._memo[key] = (False, exc)
            ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def serial(self, name: str) -> threading.Lock:
        """A lock per API client: the discovery clients (httplib2) are not thread-safe, so
        checks running at once take turns on the same client."""
        with self._lock:
            return self._locks.setdefault(f"serial:{name}", threading.Lock())

    def known(self, key: str) -> tuple[bool, Any] | None:
        """The memoised outcome of ``key`` if some check already built it (never builds)."""
        with self._lock:
            return self._memo.get(key)

    def on_close(self, closer: Callable[[], None]) -> None:
        with self._lock:
            self._closers.append(closer)

    def close(self) -> None:
        """Release what was opened (clients, engines, docker); errors here are not news."""
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in reversed(closers):
            with contextlib.suppress(Exception):  # best effort: the report is already made
                closer()

    def __enter__(self) -> DoctorContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- repository and settings ------------------------------------------------------------
    def git_root(self) -> Path | None:
        from zenml_collab.core.git import find_git_root

        return find_git_root(self.start)

    def root(self) -> Path:
        from zenml_collab.core.repository import find_root

        return self.memo("root", lambda: find_root(self.start))

    def settings(self) -> Settings:
        return self.memo("settings", lambda: load_settings(self.root(), env=self.env))

    def gcp(self) -> GcpConfig | None:
        """The team's Google Cloud settings (``gcp:`` in collab.yaml), None for local setups."""
        return self.settings().team.gcp

    def require_gcp(self) -> GcpConfig:
        gcp = self.gcp()
        if gcp is None:
            raise NotApplicable("collab.yaml has no gcp section (a setup without Google Cloud)")
        return gcp

    # -- Google -----------------------------------------------------------------------------
    def credentials(self) -> FoundCredentials:
        return self.memo("credentials", self._find_credentials)

    def token(self) -> TokenCheck:
        from zenml_collab.actions.doctor.google import refresh_with_date

        return self.memo("token", lambda: refresh_with_date(self.credentials()))

    def clients(self) -> GcpClients:
        def build() -> GcpClients:
            clients = self._make_clients(self.credentials(), self.require_gcp().project)
            self.on_close(clients.close)
            return clients

        return self.memo("clients", build)

    def member(self) -> str:
        """The IAM member the checks are about: ``--member``, else the caller's account."""
        from zenml_collab.infra.gcp.permissions import normalise_member

        if self.member_override:
            return normalise_member(self.member_override)
        account = self.token().account or self.credentials().account
        if not account:
            raise CollabError("cannot tell which account your credentials belong to",
                              "pass it explicitly: `collab doctor --member user:you@example.com`")
        return normalise_member(account)

    def instance(self) -> dict[str, Any] | None:
        from zenml_collab.config import parse_connection_name
        from zenml_collab.infra.gcp import sqladmin

        def build() -> dict[str, Any] | None:
            gcp = self.require_gcp()
            project, _, name = parse_connection_name(gcp.instance)
            clients = self.clients()
            with self.serial("sqladmin"):
                return sqladmin.get_instance(clients.sqladmin, project, name,
                                             retry=clients.retry)

        return self.memo("instance", build)

    # -- docker and the database ------------------------------------------------------------
    def docker(self) -> DockerClient:
        def build() -> DockerClient:
            client = self._docker()
            self.on_close(client.close)
            return client

        return self.memo("docker", build)

    def metadata_store(self) -> MetadataStore:
        def build() -> MetadataStore:
            from zenml_collab.core.stores import open_metadata_store

            store = open_metadata_store(
                self.settings().metadata, self.root(),
                credentials_file=self.settings().local.credentials_file)
            self.on_close(lambda: _dispose(store.engine))
            return store

        return self.memo("store", build)

    def db_login(self) -> DbLogin:
        from zenml_collab.actions.doctor.database import login

        return self.memo("db_login", lambda: login(self))


def _dispose(engine: Any) -> None:
    engine.dispose()
    connector = getattr(engine, "info_connector", None)
    if connector is not None:
        connector.close()
