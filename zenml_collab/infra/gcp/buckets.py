"""Cloud Storage (google-cloud-storage): the artifact bucket, its IAM policy, a probe object.

``client`` is a ``google.cloud.storage.Client`` from :func:`storage_client`. The library's own
retries are switched off (``retry=None``) in favour of :mod:`.retry`, like every other API.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zenml_collab.errors import CollabError
from zenml_collab.google.propagation import Propagation, write_policy
from zenml_collab.infra.gcp.errors import translate
from zenml_collab.infra.gcp.retry import RetryPolicy, call_with_retry, status_of

ETAG_ATTEMPTS = 8


@dataclass(frozen=True)
class BucketInfo:
    name: str
    location: str  # upper case, as Google reports it (EUROPE-WEST1)
    ubla: bool
    public_access_prevention: str  # "enforced", "inherited" or "unspecified"
    project_number: str | None


@dataclass(frozen=True)
class ProbeResult:
    """Timings (milliseconds) of writing, reading and deleting a small object."""

    object_name: str
    write_ms: float
    read_ms: float
    delete_ms: float


def storage_client(credentials: Any, project: str | None) -> Any:
    """A storage client for ``project`` honouring ``STORAGE_EMULATOR_HOST`` (built by the
    shared access layer, like the artifact store's)."""
    from zenml_collab.google.access import GoogleAccess

    return GoogleAccess(project=project, given_credentials=credentials).storage_client()


def _info(bucket: Any) -> BucketInfo:
    config = bucket.iam_configuration
    return BucketInfo(bucket.name, str(bucket.location or "").upper(),
                      bool(config.uniform_bucket_level_access_enabled),
                      str(config.public_access_prevention or "inherited"),
                      str(bucket.project_number) if bucket.project_number else None)


def get_bucket_info(client: Any, name: str, *,
                    retry: RetryPolicy | None = None) -> BucketInfo | None:
    """The bucket's location, UBLA and PAP, or None if no bucket has that name.

    A 403 means the name exists but belongs to someone else (or we lack access): that is an
    error, not "absent", since bucket names are global.
    """
    try:
        bucket = call_with_retry(lambda: client.get_bucket(name, retry=None), retry)
    except Exception as exc:
        if status_of(exc) == 404:
            return None
        raise translate(exc, action="read the bucket", resource=f"gs://{name}") from exc
    return _info(bucket)


def create_bucket(client: Any, name: str, *, location: str, project: str,
                  retry: RetryPolicy | None = None) -> BucketInfo:
    """Create ``name`` in ``location`` with uniform access and public access prevention."""
    bucket = client.bucket(name)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    try:
        created = call_with_retry(lambda: client.create_bucket(
            bucket, project=project, location=location, retry=None), retry)
    except Exception as exc:
        if status_of(exc) == 409:
            raise CollabError(f"the bucket name {name} is already taken",
                              "bucket names are global: choose another with --bucket") from exc
        raise translate(exc, action="create the bucket", resource=f"gs://{name}",
                        project=project) from exc
    return _info(created)


def secure_bucket(client: Any, name: str, *, retry: RetryPolicy | None = None) -> BucketInfo:
    """Turn on uniform bucket-level access and enforce public access prevention."""
    bucket = client.bucket(name)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    try:
        call_with_retry(lambda: bucket.patch(retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="secure the bucket", resource=f"gs://{name}") from exc
    return _info(bucket)


def _missing(policy: Any, wanted: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    have: dict[str, set[str]] = {}
    for binding in policy.bindings:
        if not binding.get("condition"):
            have.setdefault(binding["role"], set()).update(binding.get("members", ()))
    out: dict[str, list[str]] = {}
    for role, members in wanted.items():
        absent = [m for m in members if m not in have.get(role, set())]
        if absent:
            out[role] = absent
    return out


def get_bucket_policy(client: Any, name: str, *, retry: RetryPolicy | None = None) -> Any:
    """The bucket's IAM policy (version 3)."""
    try:
        return call_with_retry(lambda: client.bucket(name).get_iam_policy(
            requested_policy_version=3, retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="read the bucket's IAM policy",
                        resource=f"gs://{name}") from exc


def missing_bucket_bindings(client: Any, name: str, wanted: Mapping[str, Iterable[str]], *,
                            retry: RetryPolicy | None = None) -> dict[str, list[str]]:
    """``{role: [members]}`` of ``wanted`` the bucket policy does not grant yet."""
    return _missing(get_bucket_policy(client, name, retry=retry), wanted)


def add_bucket_bindings(client: Any, name: str, wanted: Mapping[str, Iterable[str]], *,
                        retry: RetryPolicy | None = None,
                        propagation: Propagation | None = None) -> bool:
    """Grant ``{role: [members]}`` on the bucket (read-modify-write, etag retry on 412); a new
    service account of ``propagation`` that IAM does not know yet is waited for."""
    return write_policy(lambda: _add_bucket_bindings_once(client, name, wanted, retry),
                        propagation, f"gs://{name}")


def _add_bucket_bindings_once(client: Any, name: str, wanted: Mapping[str, Iterable[str]],
                              retry: RetryPolicy | None) -> bool:
    for _ in range(ETAG_ATTEMPTS):
        policy = get_bucket_policy(client, name, retry=retry)
        missing = _missing(policy, wanted)
        if not missing:
            return False
        for role, members in missing.items():
            target = next((b for b in policy.bindings
                           if b["role"] == role and not b.get("condition")), None)
            if target is None:
                policy.bindings.append({"role": role, "members": set(members)})
            else:
                target["members"] = set(target["members"]) | set(members)
        try:
            call_with_retry(functools.partial(client.bucket(name).set_iam_policy, policy,
                                              retry=None), retry)
            return True
        except Exception as exc:
            if status_of(exc) in (409, 412):
                continue
            raise translate(exc, action="update the bucket's IAM policy",
                            resource=f"gs://{name}") from exc
    raise CollabError(f"the IAM policy of gs://{name} kept changing while we edited it",
                      "someone else is editing it right now: wait a minute and re-run")


def test_bucket_permissions(client: Any, name: str, permissions: Iterable[str], *,
                            retry: RetryPolicy | None = None) -> set[str]:
    """The subset of ``permissions`` the caller holds on the bucket."""
    asked = sorted(set(permissions))
    try:
        held = call_with_retry(lambda: client.bucket(name).test_iam_permissions(
            asked, retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="check your bucket permissions",
                        resource=f"gs://{name}") from exc
    return set(held or ())


def probe_object(client: Any, bucket: str, prefix: str = "", *,
                 retry: RetryPolicy | None = None) -> ProbeResult:
    """Write, read back and delete a small object under ``prefix``; returns the timings."""
    name = f"{prefix.strip('/')}/.collab-probe-{uuid.uuid4().hex}".lstrip("/")
    payload = uuid.uuid4().bytes
    blob = client.bucket(bucket).blob(name)
    try:
        start = time.perf_counter()
        call_with_retry(lambda: blob.upload_from_string(payload, retry=None), retry)
        wrote = time.perf_counter()
        data = call_with_retry(lambda: blob.download_as_bytes(retry=None), retry)
        read = time.perf_counter()
        call_with_retry(lambda: blob.delete(retry=None), retry)
        deleted = time.perf_counter()
    except Exception as exc:
        raise translate(exc, action="write, read and delete a probe object",
                        resource=f"gs://{bucket}/{name}") from exc
    if data != payload:
        raise CollabError(f"gs://{bucket}/{name} read back different bytes than were written",
                          "the bucket or a proxy in between corrupts data: report it")
    return ProbeResult(name, (wrote - start) * 1000, (read - wrote) * 1000,
                       (deleted - read) * 1000)
