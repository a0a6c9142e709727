"""The one classifier of Google errors: every library's exception becomes a :class:`CollabError`.

Five families reach us: googleapiclient's ``HttpError`` (Cloud SQL Admin, Service Usage),
``google.api_core.exceptions`` (Resource Manager, Cloud Storage, with ``RetryError`` when a
retry deadline ran out), the Cloud SQL connector's ``aiohttp.ClientResponseError`` (its own
calls to the Admin API: ``connectSettings`` and ``generateEphemeralCert``), google-auth's
``RefreshError`` / ``TransportError``, and plain transport errors. :func:`classify` maps them
all to the documented exit codes (1 user error, 3 permission, 4 connectivity) with a fix, and
always keeps Google's own message: that text is what a search engine or a support ticket needs.

Callers say what they were doing (``action``, ``resource``) and, where they know them, who the
caller is (``member``), the ``project`` or ``bucket`` and the ``permission`` the call needs, so
the fix can be the exact ``gcloud`` command an admin runs.

>>> classify(ConnectionRefusedError(111, "refused"), action="list buckets",
...          resource="projects/p").exit_code
4
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from zenml_collab.errors import (
    CollabError,
    ConnectivityError,
    CredentialsError,
    PermissionDeniedError,
)
from zenml_collab.google.permissions import (
    enable_command,
    grant_command,
    least_role,
    member_bucket_role,
)
from zenml_collab.google.retry import is_connection_error, status_of

LOGIN_HINT = ("run `gcloud auth application-default login` "
              "(or set GOOGLE_APPLICATION_CREDENTIALS to a valid service-account key file)")

# Google names the permission as "Permission 'x.y.z' denied" or "does not have x.y.z access".
_PERMISSION_PATTERNS = (
    re.compile(r"[Pp]ermission '([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)'"),
    re.compile(r"does not have ([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+) access"),
    re.compile(r"\b((?:cloudsql|storage|resourcemanager|serviceusage)\.[a-zA-Z]+\.[a-zA-Z]+)\b"),
)
# The connector's two Admin API calls and the permission each needs (the 403 names none).
_CONNECTOR_CALLS = (("generateEphemeralCert", "cloudsql.instances.connect"),
                    ("connectSettings", "cloudsql.instances.get"))
_DISABLED_TEXT = re.compile(r"has not been used in project \S+ before or it is disabled")
_SERVICE_IN_URL = re.compile(r"apis/api/([a-z0-9.\-]+)/")


def named_permission(message: str) -> str | None:
    """The permission a Google error message names, if any."""
    for pattern in _PERMISSION_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class GoogleErrorInfo:
    """What we could read from a Google error: status, message, reason, disabled service."""

    status: int | None
    message: str
    reason: str | None = None
    service: str | None = None
    project: str | None = None
    url: str | None = None


class ServiceDisabledError(CollabError):
    """An API is disabled in the project; ``service`` names it."""

    def __init__(self, message: str, hint: str | None, service: str) -> None:
        super().__init__(message, hint)
        self.service = service


class GooglePermissionError(PermissionDeniedError):
    """Google (IAM), not a database, refused the call: a role is missing."""


class NotFoundError(CollabError):
    """The resource does not exist (or the caller may not see it)."""


class MalformedResponseError(ValueError):
    """An answer we refuse to read: not the format asked for, parts missing, or too large.

    Raised by our own parsers of Google's wire formats (e.g. a batch response); like every
    Google error it reaches the member through :func:`classify`, never as a traceback.
    """


def _body(exc: BaseException) -> dict[str, Any]:
    content = getattr(exc, "content", None)
    if isinstance(content, bytes | str):
        try:
            data = json.loads(content)
        except ValueError:
            return {}
        return data.get("error", {}) if isinstance(data, dict) else {}
    response = getattr(exc, "response", None)
    if response is not None and hasattr(response, "json"):
        try:
            data = response.json()
        except Exception:
            return {}
        return data.get("error", {}) if isinstance(data, dict) else {}
    return {}


def _connector_error(exc: BaseException) -> GoogleErrorInfo | None:
    """The connector's ``aiohttp.ClientResponseError`` (reason holds Google's message)."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - the connector brings aiohttp
        return None
    if not isinstance(exc, aiohttp.ClientResponseError):
        return None
    url = str(getattr(exc.request_info, "real_url", "") or "") if exc.request_info else ""
    return GoogleErrorInfo(exc.status, str(exc.message or exc.status), None, None, None, url)


def inspect(exc: BaseException) -> GoogleErrorInfo:
    """Read status, message, reason and (for SERVICE_DISABLED) the service from ``exc``."""
    info = _connector_error(exc)
    if info is not None:
        return _with_disabled_service(info, [])
    body = _body(exc)
    status = status_of(exc)
    message = str(body.get("message") or getattr(exc, "message", None) or exc)
    reasons = [e.get("reason") for e in body.get("errors", []) if isinstance(e, dict)]
    service = project = None
    for detail in body.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("reason") == "SERVICE_DISABLED":
            meta = detail.get("metadata", {})
            service = meta.get("service")
            project = str(meta.get("consumer", "")).removeprefix("projects/") or None
            reasons.insert(0, "SERVICE_DISABLED")
    for detail in getattr(exc, "details", None) or []:  # api_core keeps parsed details
        if getattr(detail, "reason", None) == "SERVICE_DISABLED":
            service = dict(getattr(detail, "metadata", {}) or {}).get("service", service)
            reasons.insert(0, "SERVICE_DISABLED")
    info = GoogleErrorInfo(status, message, reasons[0] if reasons else None, service, project)
    return _with_disabled_service(info, reasons)


def _with_disabled_service(info: GoogleErrorInfo, reasons: list[Any]) -> GoogleErrorInfo:
    if info.reason == "SERVICE_DISABLED" and info.service:
        return info
    if "accessNotConfigured" in reasons or _DISABLED_TEXT.search(info.message):
        match = _SERVICE_IN_URL.search(info.message)
        if match:
            return GoogleErrorInfo(info.status, info.message, "SERVICE_DISABLED",
                                   match.group(1), info.project, info.url)
    return info


def is_service_disabled(exc: BaseException) -> str | None:
    """The disabled service ``exc`` complains about, or None."""
    info = inspect(exc)
    return info.service if info.reason == "SERVICE_DISABLED" else None


def is_google_error(exc: BaseException) -> bool:
    """Whether :func:`classify` knows ``exc`` (a Google, connector, auth or transport error)."""
    if isinstance(exc, CollabError | MalformedResponseError) or is_connection_error(exc):
        return True
    if _connector_error(exc) is not None:
        return True
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    if isinstance(exc, gexc.GoogleAPIError | aexc.GoogleAuthError):
        return True
    try:
        from googleapiclient.errors import HttpError
    except ImportError:  # pragma: no cover - a dependency of the package
        return False
    return isinstance(exc, HttpError)


def classify(exc: BaseException, *, action: str, resource: str, project: str | None = None,
             member: str | None = None, bucket: str | None = None,
             permission: str | None = None, not_found_hint: str | None = None) -> CollabError:
    """A :class:`CollabError` for ``exc``, raised while doing ``action`` on ``resource``.

    ``action`` reads like "create the Cloud SQL instance", ``resource`` like
    ``projects/p/instances/i``; both end up in the message. ``permission`` is what the call
    needs when Google's 403 does not say; ``member`` (``user:...``, ``serviceAccount:...``)
    with ``project`` or ``bucket`` turns the fix into the admin's grant command.
    """
    if isinstance(exc, CollabError):
        return exc
    from google.auth import exceptions as aexc

    if isinstance(exc, aexc.RefreshError):
        return CredentialsError(f"Google refused your credentials while trying to {action} "
                                f"({resource}): {exc}", LOGIN_HINT)
    cause = _retry_cause(exc)
    if isinstance(cause, MalformedResponseError):
        return ConnectivityError(
            f"cannot {action} ({resource}): the answer was malformed ({cause}); nothing was used",
            "run the command again; if it keeps happening, check the network path to Google "
            "(a proxy, VPN or antivirus rewriting traffic) or the emulator you point at")
    if is_connection_error(cause):
        return ConnectivityError(
            f"cannot reach Google Cloud to {action} ({resource}): {cause or type(cause).__name__}",
            "check your network connection (and any proxy or emulator settings), then re-run")
    info = inspect(cause)
    where = f"cannot {action} ({resource}): {info.message}"
    if info.reason == "SERVICE_DISABLED" and info.service:
        target = project or info.project or "PROJECT"
        return ServiceDisabledError(
            where, f"an admin enables the API: `{enable_command(info.service, target)}`",
            info.service)
    if info.status == 401:
        return CredentialsError(f"{where} (credentials refused)", LOGIN_HINT)
    if info.status == 403:
        return _permission_error(where, info, project=project, member=member, bucket=bucket,
                                 permission=permission)
    if info.status == 404:
        return NotFoundError(f"{where} (not found)",
                             not_found_hint or "check the project, region and resource names")
    if info.status == 409:
        return CollabError(f"{where} (conflict)",
                           "another change is in progress: wait a minute and re-run")
    if _is_retry_error(exc) or (info.status is not None and info.status >= 500) \
            or info.status == 429:
        return ConnectivityError(f"{where} (Google answered {info.status or 'errors'} "
                                 "repeatedly)", "this is usually transient: wait a minute and "
                                                "re-run")
    return CollabError(where, "check the values you passed; Google's message says what it "
                              "refused")


def _retry_cause(exc: BaseException) -> BaseException:
    """The last error inside an api_core ``RetryError`` (the deadline ran out), else ``exc``."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return exc.cause
    return exc


def _is_retry_error(exc: BaseException) -> bool:
    from google.api_core import exceptions as gexc

    return isinstance(exc, gexc.RetryError)


def _permission_error(where: str, info: GoogleErrorInfo, *, project: str | None,
                      member: str | None, bucket: str | None,
                      permission: str | None) -> GooglePermissionError:
    named = named_permission(info.message)
    if named is None and info.url:
        named = next((p for call, p in _CONNECTOR_CALLS if call in info.url), None)
    needed = named or permission
    if needed is None:
        return GooglePermissionError(
            where, "ask a project admin for the role this needs (`collab doctor` lists them)")
    role = member_bucket_role(needed) if bucket and needed.startswith("storage.") \
        else least_role(needed)
    who = member or "YOUR_ACCOUNT"
    if needed.startswith("storage.") and bucket:
        command = grant_command(who, role, bucket=bucket)
    elif project:
        command = grant_command(who, role, project=project)
    else:
        command = None
    hint = f"ask an admin for {role}, which grants {needed}"
    return GooglePermissionError(f"{where} (missing permission {needed})",
                                 f"{hint}: `{command}`" if command else hint)


def translate(exc: BaseException, *, action: str, resource: str,
              project: str | None = None) -> CollabError:
    """:func:`classify` under its older name (infra's API modules call it)."""
    return classify(exc, action=action, resource=resource, project=project)
