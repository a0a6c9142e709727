"""Google's error bodies, shaped as the real APIs return them.

Handlers raise :class:`GoogleError`; the server turns it into the JSON body. Keeping every shape
here lets a test compare the fake's refusal with the real one in one place.
"""

from __future__ import annotations

from typing import Any

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

_FAULT_TEXT = {
    429: ("Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'.",
          "rateLimitExceeded"),
    500: ("Internal error encountered.", "backendError"),
    503: ("The service is currently unavailable.", "backendError"),
}


class GoogleError(Exception):
    """An API error: HTTP status plus the JSON body Google sends with it."""

    def __init__(self, code: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", {}).get("message", str(code)))
        self.code = code
        self.body = body


def error(code: int, message: str, reason: str | None = None, *, domain: str = "global",
          status: str | None = None, details: list[dict[str, Any]] | None = None) -> GoogleError:
    """The generic shape: ``{"error": {"code", "message", "errors"?, "status"?, "details"?}}``."""
    err: dict[str, Any] = {"code": code, "message": message}
    if reason:
        err["errors"] = [{"message": message, "domain": domain, "reason": reason}]
    if status:
        err["status"] = status
    if details:
        err["details"] = details
    return GoogleError(code, {"error": err})


def unauthenticated() -> GoogleError:
    """401 for a missing, unknown or expired bearer token."""
    return error(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
        "authError",
        status="UNAUTHENTICATED",
    )


def sql_not_authorized() -> GoogleError:
    """Cloud SQL Admin's refusal of a call the caller lacks the permission for."""
    return error(403, "The client is not authorized to make this request.", "notAuthorized")


def sql_not_found(what: str = "instance") -> GoogleError:
    """Cloud SQL Admin's 404 for a missing instance, database, user or operation."""
    reasons = {"instance": "instanceDoesNotExist", "database": "databaseDoesNotExist",
               "operation": "operationDoesNotExist", "user": "userDoesNotExist"}
    return error(404, f"The Cloud SQL {what} does not exist.", reasons.get(what, "notFound"))


def sql_conflict(what: str = "instance") -> GoogleError:
    """Cloud SQL Admin's 409 for creating something that exists."""
    return error(409, f"The Cloud SQL {what} already exists.", f"{what}AlreadyExists")


def caller_lacks_permission() -> GoogleError:
    """Resource Manager / Service Usage refusal (gRPC-style body, no ``errors`` list)."""
    return error(403, "The caller does not have permission", status="PERMISSION_DENIED")


def storage_forbidden(member: str, permission: str, bucket: str, obj: str | None) -> GoogleError:
    """Cloud Storage's refusal, naming the member, the permission and the resource."""
    kind = "object" if obj else "bucket"
    message = (
        f"{member} does not have {permission} access to the Google Cloud Storage {kind}. "
        f"Permission '{permission}' denied on resource (or it may not exist)."
    )
    return error(403, message, "forbidden")


def etag_conflict() -> GoogleError:
    """Resource Manager's answer to ``setIamPolicy`` with a stale etag."""
    return error(
        409,
        "There were concurrent policy changes. Please retry the whole read-modify-write with "
        "exponential backoff.",
        status="ABORTED",
    )


def invalid_argument(problems: list[str]) -> GoogleError:
    """400 for a body the discovery schema rejects (unknown field, wrong type)."""
    message = "Invalid JSON payload received. " + " ".join(problems)
    details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"description": p} for p in problems]}]
    return error(400, message, "invalid", status="INVALID_ARGUMENT", details=details)


def service_disabled(service: str, title: str, project_number: str) -> GoogleError:
    """The 403 ``SERVICE_DISABLED`` a call to a disabled API gets."""
    url = (f"https://console.developers.google.com/apis/api/{service}/overview"
           f"?project={project_number}")
    message = (
        f"{title} has not been used in project {project_number} before or it is disabled. "
        f"Enable it by visiting {url} then retry. If you enabled this API recently, wait a few "
        "minutes for the action to propagate to our systems and retry."
    )
    details = [{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "SERVICE_DISABLED",
        "domain": "googleapis.com",
        "metadata": {"service": service, "consumer": f"projects/{project_number}",
                     "serviceTitle": title, "activationUrl": url,
                     "containerInfo": project_number},
    }]
    err = error(403, message, "accessNotConfigured", domain="usageLimits",
                status="PERMISSION_DENIED", details=details)
    err.body["error"]["errors"][0]["extendedHelp"] = url
    return err


def fault(code: int) -> GoogleError:
    """An injected transient failure (429, 500, 503, ...) with the usual wording."""
    message, reason = _FAULT_TEXT.get(code, (f"Injected failure {code}.", "backendError"))
    return error(code, message, reason, status=_STATUS.get(code, "UNKNOWN"))


def not_implemented(method_id: str) -> GoogleError:
    """A method the discovery documents know but this fake does not serve."""
    return error(501, f"The fake does not implement {method_id}.", status="UNIMPLEMENTED")
