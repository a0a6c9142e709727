"""``FakeGCP``: one in-process fake of the Google Cloud APIs zenml-collab talks to.

Example::

    with FakeGCP() as fake:
        fake.add_project("proj", owner="admin@proj.iam.gserviceaccount.com")
        key_file = fake.add_member("admin@proj.iam.gserviceaccount.com")
        os.environ.update(fake.env)   # endpoints for the product code
        ...                           # real clients, credentials from key_file
        assert not [r for r in fake.requests if r.mutating]
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from zenml_collab.testing.fake_gcp import server
from zenml_collab.testing.fake_gcp.auth import Authority
from zenml_collab.testing.fake_gcp.faults import Fault, FaultTable
from zenml_collab.testing.fake_gcp.propagation import PropagationDelay
from zenml_collab.testing.fake_gcp.state import Instance, Project, SqlUser, World
from zenml_collab.testing.fake_gcp.tls_front import CertGrant, CertificateAuthority, TlsFront

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.storage_proxy import StorageProxy


def _principal(member: str) -> str:
    if ":" in member:
        return member
    kind = "serviceAccount" if member.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{member}"


class FakeGCP:
    """A running fake: Cloud SQL Admin, Resource Manager, Service Usage, Storage, OAuth2.

    Attributes tests read: ``url``, ``env``, ``requests`` (the log), ``violations`` (discovery
    or routing problems; a test with any should fail), ``operation_polls`` (``operations.get``
    calls an operation of each type stays unfinished; ``{"CREATE": 2}`` by default).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 workdir: Path | None = None) -> None:
        self._host, self._port = host, port
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-gcp-") if workdir is None else None
        self.workdir: Path = Path(self._tmp.name) if self._tmp else Path(str(workdir))
        self.world = World()
        self.authority = Authority()
        self.faults = FaultTable()
        self.iam_propagation = PropagationDelay()  # off until delay_iam_propagation()
        self.requests: list[server.LoggedRequest] = []
        self.violations: list[str] = []
        self.operation_polls: dict[str, int] = {"CREATE": 2}
        self.ca = CertificateAuthority()
        self.grants: dict[int, CertGrant] = {}
        self.mysql: dict[str, Any] | None = None
        self._tls: TlsFront | None = None
        self._storage: StorageProxy | None = None
        self._http: Any = None
        self._log_lock = threading.Lock()
        self._storage_lock = threading.Lock()
        self._mirrored: list[tuple[str, str]] = []  # ("database" | "user", name) we created
        self._vertex: Any = None  # VertexState, made on first use of ``vertex``

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeGCP:
        self._http, _ = server.serve(self, self._host, self._port)
        self._port = self._http.server_address[1]
        return self

    def stop(self) -> None:
        if self._vertex is not None:
            self._vertex.stop()  # cancels running jobs' containers
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._tls is not None:
            self._tls.stop()
            self._tls = None
        if self._storage is not None:
            self._storage.stop()
            self._storage = None
        self._drop_mirrored()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> FakeGCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of every API (no trailing slash), e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self._host}:{self._port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}{server.TOKEN_PATH}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing the product (and google-auth) at the fake."""
        return {
            "COLLAB_SQLADMIN_ENDPOINT": f"{self.url}/",
            "COLLAB_RESOURCEMANAGER_ENDPOINT": self.url,
            "COLLAB_SERVICEUSAGE_ENDPOINT": f"{self.url}/",
            "STORAGE_EMULATOR_HOST": self.url,
            "COLLAB_VERTEX_ENDPOINT": f"{self.url}/",
            "COLLAB_ARTIFACTREGISTRY_ENDPOINT": f"{self.url}/",
            "COLLAB_IAM_ENDPOINT": f"{self.url}/",
            "NO_GCE_CHECK": "True",
        }

    # projects, members, IAM ----------------------------------------------------------------
    def add_project(self, project_id: str, owner: str | None = None) -> Project:
        """Create (or return) a project; ``owner`` gets ``roles/owner``."""
        project = self.world.add_project(project_id)
        if owner:
            self.grant(project_id, "roles/owner", owner)
        return project

    def add_member(self, email: str, roles: Iterable[str] = (), project: str | None = None,
                   kind: str | None = None) -> Path:
        """Register ``email``, grant it ``roles`` on ``project``, and write its key file.

        Returns the path of a service-account key (or, for ``kind="user"``, an authorized-user
        file) whose ``token_uri`` is the fake; mode 0600.
        """
        kind = kind or _principal(email).split(":")[0]
        member = self.authority.add_member(email, kind)
        roles = list(roles)
        if roles and project is None:
            raise ValueError("roles need a project")
        for role in roles:
            self.grant(project or "", role, f"{kind}:{email}")
        pid = project or next(iter(self.world.projects), "fake-project")
        return self.authority.write_key_file(member, self.workdir / "keys", pid, self.token_uri)

    def grant(self, project: str, role: str, member: str) -> None:
        """Add ``member`` (``user:...``, ``serviceAccount:...`` or a bare email) to ``role``."""
        with self.world.lock:
            self.world.add_project(project).policy.grant(role, _principal(member))

    def token_for(self, email: str) -> str:
        """An access token for a registered member, e.g. for ``Credentials(token=...)``."""
        if self.authority.member(email) is None:
            self.authority.add_member(email, _principal(email).split(":")[0])
        return self.authority.mint(email)

    # services, instances, faults -------------------------------------------------------------
    def disable_service(self, project: str, service: str) -> None:
        with self.world.lock:
            self.world.add_project(project).services.discard(service)

    def enable_service(self, project: str, service: str) -> None:
        with self.world.lock:
            self.world.add_project(project).services.add(service)

    def instance(self, project: str, name: str) -> Instance:
        with self.world.lock:
            return self.world.projects[project].instances[name]

    def set_instance_state(self, project: str, name: str, state: str) -> None:
        """Force an instance into ``RUNNABLE``, ``SUSPENDED``, ``MAINTENANCE``, ..."""
        with self.world.lock:
            self.instance(project, name).state = state

    def inject(self, pattern: str, status: int | None = 503, times: int | None = 1,
               latency: float = 0.0, drop: bool = False, expire_token: bool = False) -> Fault:
        """Make requests matching ``pattern`` fail; see :class:`~.faults.Fault`.

        ``fake.inject("sql.operations.get", status=503, times=2)`` fails two polls;
        ``drop=True`` closes the connection without an answer; ``expire_token=True`` expires
        the caller's token first (the call gets 401 and google-auth must refresh).
        """
        if drop or expire_token:
            status = None if status == 503 else status
        return self.faults.add(Fault(pattern, status, times, latency, drop, expire_token))

    def delay_iam_propagation(self, writes: int = 0, seconds: float = 0.0) -> PropagationDelay:
        """Make IAM eventually consistent: a service account created through the fake is
        refused as a new member of any IAM policy (400 "Service account X does not exist.")
        for its first ``writes`` policy writes and while younger than ``seconds``.

        ``fake.delay_iam_propagation(writes=2)`` fails the first two writes naming each new
        account; ``.settle()`` on the result makes every account known at once.
        """
        with self.world.lock:
            self.iam_propagation.writes, self.iam_propagation.seconds = writes, seconds
            return self.iam_propagation

    def mutating_requests(self) -> list[server.LoggedRequest]:
        return [r for r in self.requests if r.mutating]

    def log(self, method: str, path: str, status: int, member: str | None,
            route: Any, outcome: server.Outcome) -> server.Outcome:
        key = route.method.key if route else None
        entry = server.LoggedRequest(method, path, status, member, key,
                                     server.is_mutating(method, key))
        with self._log_lock:
            self.requests.append(entry)
        return outcome

    # Cloud SQL data plane -------------------------------------------------------------------
    @property
    def sql_ip(self) -> str:
        """The loopback address of the TLS front the connector dials (port 3307)."""
        return self._front().ip

    def _front(self) -> TlsFront:
        if self._tls is None:
            self._tls = TlsFront(self.ca, self.grants.get, self._backend_for, self._check_login)
        return self._tls

    @property
    def tls_front(self) -> TlsFront:
        return self._front()

    def attach_mysql(self, url: str) -> None:
        """Serve every instance's data plane from the MySQL server at ``url``.

        ``url`` is ``mysql+pymysql://user:password@host:port/``; databases and users created
        through the API are then created there too, so connections can really log in.
        """
        parts = urlsplit(url)
        self.mysql = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
                      "user": unquote(parts.username or "root"),
                      "password": unquote(parts.password or "")}

    def _backend_for(self, grant: CertGrant) -> tuple[str, int] | None:
        with self.world.lock:
            project = self.world.projects.get(grant.project)
            inst = project.instances.get(grant.instance) if project else None
            if inst is None or inst.state != "RUNNABLE" or self.mysql is None:
                return None
        return self.mysql["host"], self.mysql["port"]

    def _check_login(self, grant: CertGrant, db_user: str) -> str | None:
        from zenml_collab.testing.fake_gcp import iam

        refused = (f"Access denied for user '{db_user}'@'cloudsqlproxy~127.0.0.1' "
                   "(using password: NO)")
        token = self.authority.token_info(grant.access_token or "")
        if token is None or token.email != grant.email:
            return refused
        with self.world.lock:
            project = self.world.projects.get(grant.project)
            inst = project.instances.get(grant.instance) if project else None
            if inst is None or inst.flags().get("cloudsql_iam_authentication") != "on":
                return refused
            member = self.authority.member(grant.email)
            principal = member.principal if member else f"user:{grant.email}"
            if not iam.has_project_permission(project, principal, "cloudsql.instances.login"):
                return refused
            # MySQL IAM logins use the email's local part (the connector strips the domain).
            expected = grant.email.split("@")[0]
            known = {u.name.split("@")[0] for u in inst.users.values()
                     if u.type in {"CLOUD_IAM_USER", "CLOUD_IAM_SERVICE_ACCOUNT"}}
        return None if db_user == expected and expected in known else refused

    def mirror_sql(self, inst: Instance, kind: str, name: str, user: SqlUser | None = None,
                   *, drop: bool = False) -> None:
        """Apply a database/user change made through the API to the attached MySQL server.

        What the mirror creates it records, and :meth:`stop` drops it again, so fakes sharing
        one MariaDB leave nothing behind; objects that already existed are never dropped.
        """
        if self.mysql is None:
            return
        if "`" in name or "'" in name:
            from zenml_collab.testing.fake_gcp import errors

            raise errors.error(400, f"Invalid request: invalid name ({name}).", "invalid")
        import pymysql

        conn = pymysql.connect(**self.mysql, autocommit=True)
        try:
            with conn.cursor() as cur:
                if kind == "database":
                    self._mirror_database(cur, name, drop)
                elif user is not None:
                    self._mirror_user(cur, user, drop)
        finally:
            conn.close()

    def _mirror_database(self, cur: Any, name: str, drop: bool) -> None:
        if drop:
            if ("database", name) in self._mirrored:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                self._mirrored.remove(("database", name))
            return
        if not cur.execute("SHOW DATABASES LIKE %s", (name,)):
            cur.execute(f"CREATE DATABASE `{name}`")
            self._mirrored.append(("database", name))

    def _mirror_user(self, cur: Any, user: SqlUser, drop: bool) -> None:
        # IAM users log in without a password (the TLS front checked the token), under the
        # email's local part as Cloud SQL for MySQL names them.
        iam_user = user.type != "BUILT_IN"
        login = user.name.split("@")[0] if iam_user else user.name
        exists = cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = '%%'", (login,))
        if drop:
            if ("user", login) in self._mirrored:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (login,))
                self._mirrored.remove(("user", login))
        elif exists and not iam_user:
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (login, user.password or ""))
        elif not exists:
            if iam_user:
                cur.execute("CREATE USER %s@'%%'", (login,))
            else:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (login, user.password or ""))
                # Cloud SQL gives built-in users the cloudsqlsuperuser role, which may grant.
                cur.execute(f"GRANT ALL ON *.* TO `{login}`@'%' WITH GRANT OPTION")
            self._mirrored.append(("user", login))

    def _drop_mirrored(self) -> None:
        if self.mysql is None or not self._mirrored:
            return
        import pymysql

        conn = pymysql.connect(**self.mysql, autocommit=True)
        try:
            with conn.cursor() as cur:
                for kind, name in reversed(self._mirrored):
                    if kind == "database":
                        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                    else:
                        cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))
            self._mirrored.clear()
        finally:
            conn.close()

    @property
    def vertex(self) -> Any:
        """Vertex AI custom jobs (:class:`~.vertex.VertexState`): ``jobs``, ``inject(kind)``."""
        from zenml_collab.testing.fake_gcp.vertex import state_of

        return state_of(self)

    # Cloud Storage ------------------------------------------------------------------------
    @property
    def storage(self) -> StorageProxy:
        """The storage front (starts fake-gcs-server on first use)."""
        with self._storage_lock:
            if self._storage is None:
                from zenml_collab.testing.fake_gcp.storage_proxy import StorageProxy

                self._storage = StorageProxy(self)
            return self._storage
