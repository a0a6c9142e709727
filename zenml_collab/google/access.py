"""``GoogleAccess``: how this process reaches Google, decided once and shared by core and infra.

One object holds the caller's credentials (loaded on first use), the endpoints (Google's, or a
test fake named by the environment), the retry policy, the member identity used in grant
commands, and builds the clients: a ``google.cloud.storage.Client`` (one per access, reused by
every store and thread) and Cloud SQL connectors. :func:`google_access` returns the process's
instance for a recorded credentials file; tests build their own and pass it in.

``GOOGLE_APPLICATION_CREDENTIALS`` wins over the file ``collab join`` recorded, as everywhere.
With ``STORAGE_EMULATOR_HOST`` and no credentials at all, storage is anonymous (fake-gcs-server).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from zenml_collab.errors import CollabError, CredentialsError
from zenml_collab.google import endpoints
from zenml_collab.google.errors import LOGIN_HINT, classify
from zenml_collab.google.retry import RetryPolicy, default_policy

log = logging.getLogger("zenml_collab.google")
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass(frozen=True)
class GoogleAccess:
    """Credentials, endpoints, retry policy and clients of one caller.

    >>> access = GoogleAccess(credentials_file=None, storage_endpoint="http://127.0.0.1:9")
    >>> access.anonymous_storage
    True
    """

    credentials_file: str | None = None
    storage_endpoint: str | None = field(default_factory=endpoints.storage_endpoint)
    sqladmin_endpoint: str | None = field(default_factory=endpoints.sqladmin_endpoint)
    retry: RetryPolicy = field(default_factory=default_policy)
    project: str | None = None
    # Credentials the caller already holds (infra's GcpClients, tests): used as they are.
    given_credentials: Any = field(default=None, compare=False, repr=False)
    _lock: Any = field(default_factory=threading.RLock, compare=False, repr=False)

    @property
    def anonymous_storage(self) -> bool:
        """Anonymous storage: an emulator and no credentials file (fake-gcs-server)."""
        return (bool(self.storage_endpoint) and not self.credentials_file
                and self.given_credentials is None)

    @functools.cached_property
    def _loaded(self) -> tuple[Any, str | None]:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        if self.given_credentials is not None:
            return self.given_credentials, self.project

        try:
            if self.credentials_file:
                return google.auth.load_credentials_from_file(self.credentials_file,
                                                              scopes=list(SCOPES))
            credentials, project = google.auth.default(scopes=list(SCOPES))
            return credentials, project
        except DefaultCredentialsError as exc:
            where = self.credentials_file or "the environment"
            raise CredentialsError(f"no usable Google credentials in {where}: {exc}",
                                   LOGIN_HINT) from None
        except OSError as exc:
            raise CredentialsError(f"cannot read the credentials file {self.credentials_file}: "
                                   f"{exc.strerror or exc}", LOGIN_HINT) from None

    @property
    def credentials(self) -> Any:
        """The caller's google-auth credentials (loaded once); :class:`CredentialsError` if none."""
        with self._lock:
            return self._loaded[0]

    @property
    def default_project(self) -> str | None:
        if self.project:
            return self.project
        env = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT")
        if env or self.anonymous_storage:
            return env
        with self._lock:
            return self._loaded[1]

    @property
    def member(self) -> str | None:
        """``serviceAccount:...`` or ``user:...`` for grant commands, when the credentials say."""
        if self.anonymous_storage and not self.credentials_file:
            return None
        try:
            credentials = self.credentials
        except CollabError:
            return None
        email = getattr(credentials, "service_account_email", None)
        if email and email != "default":
            return f"serviceAccount:{email}"
        account = getattr(credentials, "account", None)
        return f"user:{account}" if account else None

    @functools.cached_property
    def _storage(self) -> Any:
        from google.cloud import storage

        options = {"api_endpoint": self.storage_endpoint} if self.storage_endpoint else None
        if self.anonymous_storage:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project=self.default_project or "collab-emulator",
                                  credentials=AnonymousCredentials(), client_options=options)
        return storage.Client(project=self.default_project, credentials=self.credentials,
                              client_options=options)

    def storage_client(self) -> Any:
        """The storage client of this access (one, shared: it is thread-safe)."""
        with self._lock:
            return self._storage

    def connector(self) -> OwnedConnector:
        """A new Cloud SQL connector with these credentials and endpoint; close it when done."""
        explicit = self.credentials_file or self.given_credentials is not None
        credentials = self.credentials if explicit else None
        return OwnedConnector(self.sqladmin_endpoint, credentials=credentials)

    def classify(self, exc: BaseException, **context: Any) -> CollabError:
        """:func:`~zenml_collab.google.errors.classify`, naming this caller in grant commands."""
        context.setdefault("member", self.member)
        return classify(exc, **context)


_instances: dict[tuple[str | None, ...], GoogleAccess] = {}
_instances_lock = threading.Lock()


def google_access(credentials_file: str | None = None) -> GoogleAccess:
    """The process's :class:`GoogleAccess` for this environment and recorded credentials file."""
    chosen = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or credentials_file or None
    key = (chosen, endpoints.storage_endpoint(), endpoints.sqladmin_endpoint(),
           os.environ.get("COLLAB_GCP_RETRY_INITIAL"))
    with _instances_lock:
        if key not in _instances:
            _instances[key] = GoogleAccess(credentials_file=chosen)
        return _instances[key]


class OwnedConnector:
    """A Cloud SQL Connector on an event loop we own.

    The connector stops a loop it made itself but never closes it, which leaks the loop's
    self-pipe; owning the loop lets :meth:`close` release everything.
    """

    def __init__(self, endpoint: str | None, credentials: Any = None) -> None:
        import asyncio

        from google.cloud.sql.connector import Connector

        self._loop = asyncio.new_event_loop()
        # The connector refreshes certificates in background tasks and logs their failures
        # with full tracebacks; the failure that matters reaches the caller as an exception
        # with our message. Keep the rest for COLLAB_DEBUG.
        if not os.environ.get("COLLAB_DEBUG"):
            logging.getLogger("google.cloud.sql.connector").setLevel(logging.CRITICAL)
            self._loop.set_exception_handler(
                lambda _loop, context: log.debug("connector background task: %s",
                                                 context.get("message")))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="cloudsql-connector")
        self._thread.start()
        kwargs: dict[str, Any] = {"loop": self._loop}
        if endpoint:
            kwargs["sqladmin_api_endpoint"] = endpoint
        if credentials is not None:
            kwargs["credentials"] = credentials
        self._connector = Connector(**kwargs)
        self._closed = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return self._connector.connect(*args, **kwargs)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import asyncio
        import contextlib

        self._connector.close()
        # A refresh still in flight (e.g. after a refused login) would otherwise die with
        # "Task exception was never retrieved" on the member's terminal. Best effort.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


async def _cancel_pending() -> None:
    import asyncio

    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)  # retrieves their exceptions
