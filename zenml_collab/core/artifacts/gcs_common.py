"""Cloud Storage access shared by the artifact store and gs:// datasources.

``parse_gcs_uri`` (the one parser of ``gs://bucket/prefix``), the process's storage client (from
the shared Google access layer), the retry policy, the mapping of the storage library's
exceptions to errors a member can act on, and single-object reads for datasources.
Google libraries are imported inside functions so ``import zenml_collab`` stays light.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zenml_collab.errors import ArtifactError, ConfigError, ConnectivityError

REQUIRED_ROLE = "roles/storage.objectAdmin"
DEFAULT_RETRY_TIMEOUT = 60.0
# Bucket names: 3-63 (222 with dots) lowercase letters, digits, '-', '_' and '.'.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def parse_gcs_uri(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/prefix`` into ``(bucket, prefix)``; the prefix may be empty.

    >>> parse_gcs_uri("gs://team-artifacts/zenml/")
    ('team-artifacts', 'zenml')
    """
    if not uri.startswith("gs://"):
        raise ConfigError(f"{uri!r} is not a gs:// URI", "use gs://BUCKET/PREFIX")
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    if not _BUCKET_NAME.match(bucket):
        raise ConfigError(
            f"{uri!r} does not name a valid bucket",
            "use gs://BUCKET/PREFIX, e.g. gs://my-team-artifacts/zenml (bucket names are "
            "3-63 lowercase letters, digits, '-', '_' or '.')",
        )
    return bucket, prefix.strip("/")


# -- the client -------------------------------------------------------------------------------
def storage_client(credentials_file: str | None = None) -> Any:
    """The process's ``google.cloud.storage.Client`` (one per environment and credentials).

    Built by the shared Google access layer (:mod:`zenml_collab.google.access`): with
    ``STORAGE_EMULATOR_HOST`` and no credentials the client is anonymous (fake-gcs-server);
    otherwise ``GOOGLE_APPLICATION_CREDENTIALS``, the recorded ``credentials_file``, or ADC.
    """
    from zenml_collab.google.access import google_access

    return google_access(credentials_file).storage_client()


def _retry(timeout: float | None = None) -> Any:
    """The library's retry policy (429, 5xx, dropped connections) with our time bound."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    if timeout is None:
        timeout = float(os.environ.get("COLLAB_GCS_RETRY_TIMEOUT", DEFAULT_RETRY_TIMEOUT))
    return DEFAULT_RETRY.with_delay(initial=0.25, maximum=8.0, multiplier=2.0).with_timeout(timeout)


@contextmanager
def gcs_errors(bucket: str, action: str) -> Iterator[None]:
    """Turn the storage library's exceptions into errors a member can act on.

    The one Google classifier does the mapping (exit codes, the role to ask for); a 404 that
    reaches here is the bucket's own (object-level 404s are handled by the callers).
    """
    from zenml_collab.google.access import google_access
    from zenml_collab.google.errors import NotFoundError, is_google_error

    try:
        yield
    except Exception as exc:
        from google.cloud.storage.exceptions import DataCorruption

        if isinstance(exc, DataCorruption):
            # The object's crc32c (X-Goog-Hash) did not match the bytes received: damaged in
            # transit, not in the bucket. Never a traceback, and never "artifact corrupt".
            raise ConnectivityError(
                f"gs://{bucket}: {action}: the bytes received do not match the object's "
                "checksum (damaged in transit); nothing was used",
                "run the command again; if it keeps happening, check the network path to "
                "Google (a proxy, VPN or antivirus rewriting traffic)") from None
        if isinstance(exc, ArtifactError | ConfigError) or not is_google_error(exc):
            raise
        error = google_access().classify(
            exc, action=action, resource=f"gs://{bucket}", bucket=bucket,
            permission="storage.objects.list" if action.startswith(("listing", "checking"))
            else None)
        if isinstance(error, NotFoundError):
            raise _bucket_not_found(bucket) from None
        raise error from None


def _bucket_not_found(bucket: str) -> ConfigError:
    return ConfigError(f"bucket gs://{bucket} does not exist (or is not visible to you)",
                       "check artifacts.uri for a typo (`collab config show` says which file "
                       "sets it), or ask an admin to create the bucket")


# -- reading single objects (datasources) -----------------------------------------------------
def read_object(uri: str) -> bytes:
    """The bytes of the object at ``gs://bucket/path``."""
    from google.api_core import exceptions as gexc

    bucket, name = parse_gcs_uri(uri)
    blob = storage_client().bucket(bucket).blob(name)
    with gcs_errors(bucket, f"reading {name}"):
        try:
            data: bytes = blob.download_as_bytes(retry=_retry())
        except gexc.NotFound:
            raise ConfigError(f"{uri} does not exist", "check the path of the datasource") from None
    return data


def object_fingerprint(uri: str) -> str:
    """A content fingerprint of ``gs://bucket/path`` from its metadata (one request).

    The MD5 (or CRC32C for composite objects) and size identify the content, so re-uploading
    an identical file keeps the cache valid and changing it invalidates the cache.
    """
    from google.api_core import exceptions as gexc

    bucket, name = parse_gcs_uri(uri)
    blob = storage_client().bucket(bucket).blob(name)
    with gcs_errors(bucket, f"reading {name}"):
        try:
            blob.reload(retry=_retry())
        except gexc.NotFound:
            raise ConfigError(f"{uri} does not exist", "check the path of the datasource") from None
    if blob.md5_hash:
        return f"md5:{blob.md5_hash}:{blob.size}"
    return f"crc32c:{blob.crc32c}:{blob.size}"


