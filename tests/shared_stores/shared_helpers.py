"""Helpers and fixtures of the shared-store tests: MariaDB + fake-gcs-server behind a proxy.

A module of its own (not conftest.py) so test modules can import it by a unique name.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``handler`` on a free 127.0.0.1 port in a daemon thread: (server, its URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


#: (method, path, content type, body) -> (content type, body) of an answer, as relayed.
Rewrite = Callable[[str, str, str, bytes], tuple[str, bytes]]


class RewritingRelay:
    """An HTTP relay in front of fake-gcs-server whose answers pass through ``rewrite``: what
    a broken middlebox, proxy or server could send back. Links in JSON answers are pointed
    at the relay, so a client following them stays behind it."""

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        self.upstream, self.rewrite = upstream, rewrite
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        relay, target = self, urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body in one segment (no delayed-ACK stall)
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.request(self.command, self.path, body=body,
                             headers={k: v for k, v in self.headers.items()
                                      if k.lower() not in HOP_HEADERS})
                response = conn.getresponse()
                content_type, data = response.getheader("Content-Type") or "", response.read()
                conn.close()
                if "json" in content_type:
                    data = data.replace(relay.upstream.encode(), relay.url.encode())
                content_type, data = relay.rewrite(self.command, self.path, content_type, data)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_HEADERS | {"content-type"}:
                        self.send_header(key, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(OSError):  # the client stopped reading
                        self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server, self.url = serve(Handler)
        return self.url

    def stop(self) -> None:
        stop_server(self._server)


@dataclass
class Fault:
    method: str
    contains: str
    status: int
    times: int = 1
    hits: int = 0


@dataclass
class GcsProxy:
    """An HTTP proxy in front of fake-gcs-server that logs every request and injects faults."""

    upstream: str
    log: list[tuple[str, str, int, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, method: str, contains: str, status: int, times: int = 1) -> Fault:
        fault = Fault(method, contains, status, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits < fault.times and fault.method == method and fault.contains in path:
                    fault.hits += 1
                    return fault
        return None

    def record(self, method: str, path: str, status: int, name: str = "") -> None:
        with self._lock:
            self.log.append((method, path, status, name))

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.faults.clear()

    def requests(self, *, since: int = 0) -> list[tuple[str, str, int, str]]:
        """(method, path, status, object name from a JSON response) of each request."""
        with self._lock:
            return list(self.log[since:])

    def start(self) -> str:
        proxy = self
        target = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy.take_fault(self.command, self.path)
                if fault is not None:
                    payload = json.dumps({"error": {"code": fault.status,
                                                    "message": "injected by the test proxy"}})
                    # Logged before the answer: a client may count requests as soon as
                    # it has its answer.
                    proxy.record(self.command, self.path, fault.status)
                    self._reply(fault.status, [("Content-Type", "application/json")],
                                payload.encode())
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if "json" in (response.getheader("Content-Type") or ""):
                    # Links in responses (mediaLink) must lead back through the proxy.
                    data = data.replace(proxy.upstream.encode(), proxy.url.encode())
                proxy.record(self.command, self.path, response.status, _object_name(data))
                self._reply(response.status, [(k, v) for k, v in response.getheaders()
                                              if k.lower() not in HOP_HEADERS], data)

            def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server, self.url = serve(Handler)
        return self.url

    def stop(self) -> None:
        stop_server(self._server)


def _object_name(data: bytes) -> str:
    try:
        value = json.loads(data)
    except ValueError:
        return ""
    return str(value.get("name", "")) if isinstance(value, dict) else ""


@pytest.fixture
def gcs_proxy(gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[GcsProxy]:
    """A proxy in front of fake-gcs-server; ``STORAGE_EMULATOR_HOST`` points at it."""
    proxy = GcsProxy(gcs_endpoint)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.start())
    monkeypatch.setenv("COLLAB_GCS_RETRY_TIMEOUT", "20")
    yield proxy
    proxy.stop()


def list_objects(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    """Every object in ``bucket``, read directly from fake-gcs-server."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        query = "?maxResults=1000" + (f"&pageToken={token}" if token else "")
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{bucket}/o{query}",
                                    timeout=30) as response:
            page = json.loads(response.read() or b"{}")
        items.extend(page.get("items", []))
        token = page.get("nextPageToken", "")
        if not token:
            return items


def overwrite_object(endpoint: str, bucket: str, name: str, data: bytes) -> None:
    """Replace an object behind the store's back (plain upload, no precondition)."""
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    request = urllib.request.Request(f"{endpoint}/upload/storage/v1/b/{bucket}/o?{query}",
                                     data=data, method="POST")
    request.add_header("Content-Type", "application/octet-stream")
    urllib.request.urlopen(request, timeout=30).close()


@dataclass(frozen=True)
class MysqlLogin:
    host: str
    port: int
    user: str
    password: str
    database: str


@pytest.fixture
def mysql_login(mysql_url: Any) -> MysqlLogin:
    """The fresh test database as the pieces `collab config metadata set mysql` takes."""
    return MysqlLogin(mysql_url.host, mysql_url.port, mysql_url.username, mysql_url.password,
                      mysql_url.database)


def run(args: list[str], cwd: Path, *, input: str | None = None,
        env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, input=input,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def collab(cwd: Path, *args: str, input: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `collab` entry point in a fresh process."""
    return run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()", *args],
               cwd, input=input, env=env)


def configure_mysql(cwd: Path, login: MysqlLogin, *extra: str,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return collab(cwd, "config", "metadata", "set", "mysql", "--host", login.host,
                  "--port", str(login.port), "--username", login.user,
                  "--database", login.database, "--password-stdin", *extra,
                  input=login.password + "\n", env=env)


@pytest.fixture
def steps_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make tests/shared_stores/shared_store_steps.py importable here and in child processes."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def git_repo(path: Path, user: str = "member") -> Path:
    """A fresh git repository (not yet a collab repository) at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "--initial-branch=main")
    git(path, "config", "user.name", user)
    git(path, "config", "user.email", f"{user}@example.com")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """The bytes of the two config files (absent files map to b"<absent>")."""
    out = {}
    for rel in ("collab.yaml", ".collab/local.yaml"):
        path = root / rel
        out[rel] = path.read_bytes() if path.exists() else b"<absent>"
    return out
