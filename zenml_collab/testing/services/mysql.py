"""The test MariaDB: a private datadir, a generated root password, stop/start for fault tests."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zenml_collab.testing.services._process import (
    alive,
    free_port,
    spawn,
    terminate,
    wait_for,
    write_private,
)


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
        write_private(self.state_file, json.dumps(data, indent=2))

    def stop(self) -> None:
        data, mysql = self._load()
        terminate(mysql.pid, timeout=60)
        mysql.pid = 0
        self._save(data, mysql)

    def start(self, extra_args: list[str] | None = None) -> None:
        data, mysql = self._load()
        if mysql.pid and alive(mysql.pid):
            return
        mysql.pid = spawn(mysql.argv + (extra_args or []), Path(mysql.log))
        self._save(data, mysql)
        wait_for("MariaDB", lambda: mysql_ping(mysql.socket), 60, mysql.pid, Path(mysql.log))

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
    write_private(init, "\n".join(sql) + "\n")
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
    state.pid = spawn([*state.argv, f"--init-file={init}"], log)
    try:
        wait_for("MariaDB", lambda: mysql_ping(state.socket), 60, state.pid, log)
        wait_for("MariaDB root login", lambda: _mysql_login_ok(state), 30, state.pid, log)
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
