"""Turn the Google client libraries' exceptions into errors a user can act on.

Three libraries raise three families: googleapiclient's ``HttpError`` (Cloud SQL Admin, Service
Usage), ``google.api_core.exceptions`` (Resource Manager, Cloud Storage) and transport errors.
:func:`translate` maps them all to :mod:`zenml_collab.errors` classes and always keeps Google's
own message, because that message is what a search engine or a support ticket needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from zenml_collab.errors import CollabError, ConnectivityError, PermissionDeniedError
from zenml_collab.infra.gcp.permissions import enable_command, least_role
from zenml_collab.infra.gcp.retry import is_connection_error, status_of

# Google names the permission as "Permission 'x.y.z' denied" or "does not have x.y.z access".
_PERMISSION_PATTERNS = (
    re.compile(r"[Pp]ermission '([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)'"),
    re.compile(r"does not have ([a-z]+\.[a-zA-Z]+\.[a-zA-Z]+) access"),
    re.compile(r"\b((?:cloudsql|storage|resourcemanager|serviceusage)\.[a-zA-Z]+\.[a-zA-Z]+)\b"),
)


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


class ServiceDisabledError(CollabError):
    """An API is disabled in the project; ``service`` names it."""

    def __init__(self, message: str, hint: str | None, service: str) -> None:
        super().__init__(message, hint)
        self.service = service


class NotFoundError(CollabError):
    """The resource does not exist (or the caller may not see it)."""


def _body(exc: BaseException) -> dict[str, Any]:
    content = getattr(exc, "content", None)
    if isinstance(content, bytes | str):
        try:
            data = json.loads(content)
        except ValueError:
            return {}
        return data.get("error", {}) if isinstance(data, dict) else {}
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            data = response.json()
        except Exception:
            return {}
        return data.get("error", {}) if isinstance(data, dict) else {}
    return {}


def inspect(exc: BaseException) -> GoogleErrorInfo:
    """Read status, message, reason and (for SERVICE_DISABLED) the service from ``exc``."""
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
        reason = getattr(detail, "reason", None)
        if reason == "SERVICE_DISABLED":
            service = dict(getattr(detail, "metadata", {}) or {}).get("service", service)
            reasons.insert(0, "SERVICE_DISABLED")
    if service is None and "accessNotConfigured" in reasons:
        match = re.search(r"apis/api/([a-z0-9.\-]+)/", message)
        service = match.group(1) if match else None
        reasons.insert(0, "SERVICE_DISABLED")
    return GoogleErrorInfo(status, message, reasons[0] if reasons else None, service, project)


def is_service_disabled(exc: BaseException) -> str | None:
    """The disabled service ``exc`` complains about, or None."""
    info = inspect(exc)
    return info.service if info.reason == "SERVICE_DISABLED" else None


def translate(exc: BaseException, *, action: str, resource: str,
              project: str | None = None) -> CollabError:
    """A :class:`CollabError` for ``exc``, raised while doing ``action`` on ``resource``.

    ``action`` reads like "create the Cloud SQL instance", ``resource`` like
    ``projects/p/instances/i``; both end up in the message.
    """
    if isinstance(exc, CollabError):
        return exc
    if is_connection_error(exc):
        return ConnectivityError(
            f"cannot reach Google Cloud to {action} ({resource}): {exc}",
            "check your network connection (and any proxy settings), then re-run",
        )
    info = inspect(exc)
    where = f"cannot {action} ({resource}): {info.message}"
    if info.reason == "SERVICE_DISABLED" and info.service:
        target = project or info.project or "PROJECT"
        return ServiceDisabledError(
            where, f"enable the API: `{enable_command(info.service, target)}`", info.service)
    if info.status in (401,):
        return PermissionDeniedError(
            where, "your credentials were refused: run `gcloud auth application-default login` "
                   "(or set GOOGLE_APPLICATION_CREDENTIALS to a valid key file)")
    if info.status == 403:
        permission = named_permission(info.message)
        if permission:
            role = least_role(permission)
            return PermissionDeniedError(
                f"{where} (missing permission {permission})",
                f"ask a project admin for {role}, which grants {permission}")
        return PermissionDeniedError(
            where, "ask a project admin for the role this needs (`collab doctor` lists them)")
    if info.status == 404:
        return NotFoundError(f"{where} (not found)",
                             "check the project, region and resource names")
    if info.status == 409:
        return CollabError(f"{where} (conflict)",
                           "another change is in progress: wait a minute and re-run")
    if (info.status is not None and info.status >= 500) or info.status == 429:
        return ConnectivityError(f"{where} (Google answered {info.status} repeatedly)",
                                 "this is usually transient: wait a minute and re-run")
    return CollabError(where, "check the values you passed; Google's message says what it "
                              "refused")
