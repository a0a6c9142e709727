"""The fake's HTTP server and its request pipeline.

Every request goes through the same steps, in the order Google applies them:
fault injection -> route (discovery) -> authentication (401) -> request validation (400) ->
API enabled in the project (403 SERVICE_DISABLED) -> permission (403) -> handler ->
response validation. Each step that finds a problem in *our* code (an unknown route, a field the
discovery document does not define) also records a ``violation`` that fails the test.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from zenml_collab.testing.fake_gcp import (
    discovery,
    errors,
    iam,
    registry,
    serviceusage,
    sqladmin,
    storage_batch,
    vertex,
)
from zenml_collab.testing.fake_gcp.auth import TokenError
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import API_SERVICE, SERVICE_TITLES

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP

TOKEN_PATH = "/token"
HANDLERS = {**iam.HANDLERS, **sqladmin.HANDLERS, **serviceusage.HANDLERS, **vertex.HANDLERS,
            **registry.HANDLERS}
# POSTs that change nothing: a re-run that only makes these made "zero mutating calls".
READ_ONLY_POSTS = frozenset({
    "cloudresourcemanager.projects.getIamPolicy",
    "cloudresourcemanager.projects.testIamPermissions",
    "sql.connect.generateEphemeralCert",
    "iam.projects.serviceAccounts.testIamPermissions",
    "iam.projects.serviceAccounts.getIamPolicy",
    "artifactregistry.projects.locations.repositories.testIamPermissions",
})


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered, as tests see it in ``fake.requests``."""

    method: str
    path: str
    status: int
    member: str | None
    method_id: str | None
    mutating: bool


@dataclass
class Outcome:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    drop: bool = False


def _json(status: int, body: Any) -> Outcome:
    return Outcome(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def dispatch(fake: FakeGCP, http_method: str, target: str, headers: dict[str, str],
             raw_body: bytes) -> Outcome:
    """Answer one HTTP request (``target`` is the request line's path plus query)."""
    split = urlsplit(target)
    path, query = split.path, parse_qs(split.query, keep_blank_values=True)
    if path == TOKEN_PATH and http_method == "POST":
        return _token(fake, path, raw_body)
    if path == storage_batch.PATH and http_method == "POST":  # each part: the whole pipeline
        return Outcome(*storage_batch.serve(headers, raw_body, lambda *call: _inner(fake, *call),
                                            fake.violations))
    route = discovery.match(http_method, path)
    key = route.method.key if route else ""
    fault = fake.faults.take(key, http_method, path)
    member = fake.authority.identify(headers.get("authorization"))
    member_email = member.email if member else None
    try:
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.drop:
                return fake.log(http_method, path, 0, member_email, route, Outcome(0, drop=True))
            if fault.expire_token and member is not None:
                fake.authority.expire_tokens(member.email)
                member = None
            if fault.status:
                raise errors.fault(fault.status)
        if route is None:
            fake.violations.append(f"unknown route: {http_method} {path}")
            raise errors.error(404, f"The fake knows no method for {http_method} {path}.",
                               "notFound", status="NOT_FOUND")
        if member is None:
            raise errors.unauthenticated()
        call = Call(key, route.method.api, http_method, path, route.params, query,
                    _parse_body(headers, raw_body), raw_body, headers, member.email,
                    member.principal)
        _validate_request(fake, call, route.method)
        if call.api == "storage":  # takes the lock itself: object bytes flow without it
            reply = fake.storage.handle(call)
        else:
            with fake.world.lock:
                reply = _serve(fake, call)
        if reply.raw is None and route.method.response_ref and reply.status < 300:
            problems = discovery.validate(reply.body, route.method.response_ref,
                                          route.method.document)
            fake.violations.extend(f"response of {key}: {p}" for p in problems)
        outcome = (Outcome(reply.status, reply.raw, reply.headers) if reply.raw is not None
                   else _json(reply.status, reply.body if reply.body is not None else {}))
    except errors.GoogleError as exc:
        outcome = _json(exc.code, exc.body)
    return fake.log(http_method, path, outcome.status, member_email, route, outcome)


def _inner(fake: FakeGCP, http_method: str, target: str, headers: dict[str, str],
           raw_body: bytes) -> tuple[int, bytes, dict[str, str]]:
    outcome = dispatch(fake, http_method, target, headers, raw_body)
    return outcome.status, outcome.body, outcome.headers or {}


def _token(fake: FakeGCP, path: str, raw_body: bytes) -> Outcome:
    fault = fake.faults.take("oauth2.token", "POST", path)
    if fault is not None and fault.drop:
        return Outcome(0, drop=True)
    if fault is not None and fault.status:
        # google-auth retries "temporarily_unavailable" itself; a 4xx is a refused grant.
        error = "invalid_grant" if fault.status < 429 else "temporarily_unavailable"
        return _json(fault.status, {"error": error, "error_description": "Injected fault."})
    try:
        return _json(200, fake.authority.grant(raw_body))
    except TokenError as exc:
        return _json(400, exc.body)


def _parse_body(headers: dict[str, str], raw_body: bytes) -> Any:
    if not raw_body or "json" not in headers.get("content-type", ""):
        return None
    try:
        return json.loads(raw_body)
    except ValueError as exc:
        raise errors.invalid_argument([f"Invalid JSON: {exc}"]) from exc


def _validate_request(fake: FakeGCP, call: Call, method: discovery.Method) -> None:
    problems = [f'Unknown query parameter "{name}".'
                for name in discovery.unknown_query_params(method, call.query)]
    if call.body is not None and method.request_ref:
        problems += discovery.validate(call.body, method.request_ref, method.document)
    if problems:
        fake.violations.extend(f"request of {call.method_key}: {p}" for p in problems)
        raise errors.invalid_argument(problems)


def _serve(fake: FakeGCP, call: Call) -> Reply:
    project_key = call.params.get("project") or call.params.get("projectsId") or call.params.get(
        "v1Id1")
    project = fake.world.find_project(project_key) if project_key else None
    service = API_SERVICE.get(call.api)
    if project is not None and service and service not in project.services:
        raise errors.service_disabled(service, SERVICE_TITLES[service], project.number)
    handler = HANDLERS.get(call.method_key)
    if handler is None:
        fake.violations.append(f"unimplemented method: {call.method_key}")
        raise errors.not_implemented(call.method_key)
    permission = iam.METHOD_PERMISSIONS.get(call.method_key)
    if permission and not iam.has_project_permission(project, call.principal, permission):
        raise (errors.sql_not_authorized() if call.api == "sqladmin"
               else errors.caller_lacks_permission())
    return handler(fake, call)


def is_mutating(http_method: str, method_key: str | None) -> bool:
    """Whether a call changes state (what "a re-run made zero mutating calls" counts)."""
    return http_method in {"POST", "PUT", "PATCH", "DELETE"} and method_key not in READ_ONLY_POSTS


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffer the response so headers and body leave in one segment: two small writes meet
    # the client's delayed ACK and cost ~40 ms per call.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = dispatch(self.server.fake, self.command, self.path, headers, raw_body)
        if outcome.drop:
            self.close_connection = True
            self.connection.close()
            return
        self.send_response(outcome.status)
        for name, value in (outcome.headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(outcome.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is fake.requests; stderr noise helps nobody


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeGCP) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


def serve(fake: FakeGCP, host: str, port: int) -> tuple[_Server, threading.Thread]:
    """Start serving ``fake`` on ``host:port`` (0: a free port) in a daemon thread."""
    server = _Server((host, port), fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="fake-gcp-http", daemon=True)
    thread.start()
    return server, thread
