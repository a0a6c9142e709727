"""Cloud SQL Admin v1 (discovery client): instances, operations, databases, users.

``client`` is ``build("sqladmin", "v1", static_discovery=True, ...)`` (see
:func:`zenml_collab.infra.gcp.clients.sqladmin_client`). Reads return plain dicts (the API's
JSON) or ``None`` when the resource does not exist; inserts return the operation name.

Deviation from the contract sketch: IAM users have two names. :func:`iam_user_name` is the name
the Admin API stores (``alice@x.com``, ``sa@p.iam`` for a service account) and
:func:`iam_db_username` is the MySQL login name (``alice``, ``sa``) the proxy or connector logs
in with; the contract's single ``iam_db_username`` mixed the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp.errors import translate
from zenml_collab.infra.gcp.retry import RetryPolicy, call_with_retry, status_of

OperationCallback = Callable[["OperationProgress"], None]


@dataclass(frozen=True)
class OperationProgress:
    """One poll of a long-running operation, handed to ``on_progress``."""

    name: str
    operation_type: str
    status: str  # PENDING, RUNNING, DONE
    polls: int
    elapsed: float


def _get_or_none(fn: Callable[[], Any], retry: RetryPolicy | None, *, action: str,
                 resource: str, project: str) -> Any:
    try:
        return call_with_retry(fn, retry)
    except Exception as exc:
        if status_of(exc) == 404:
            return None
        raise translate(exc, action=action, resource=resource, project=project) from exc


def _call(fn: Callable[[], Any], retry: RetryPolicy | None, *, action: str, resource: str,
          project: str) -> Any:
    try:
        return call_with_retry(fn, retry)
    except Exception as exc:
        raise translate(exc, action=action, resource=resource, project=project) from exc


def get_instance(client: Any, project: str, instance: str, *,
                 retry: RetryPolicy | None = None) -> dict[str, Any] | None:
    """The instance resource, or None if it does not exist."""
    return _get_or_none(lambda: client.instances().get(project=project, instance=instance)
                        .execute(), retry, action="read the Cloud SQL instance",
                        resource=f"{project}/{instance}", project=project)


def insert_instance(client: Any, project: str, body: dict[str, Any], *,
                    retry: RetryPolicy | None = None) -> str:
    """Start creating an instance; returns the operation name (creation takes minutes)."""
    op = _call(lambda: client.instances().insert(project=project, body=body).execute(), retry,
               action="create the Cloud SQL instance", resource=f"{project}/{body.get('name')}",
               project=project)
    return str(op["name"])


def patch_instance(client: Any, project: str, instance: str, body: dict[str, Any], *,
                   retry: RetryPolicy | None = None) -> str:
    """Patch instance settings (lists like ``databaseFlags`` replace the old list)."""
    op = _call(lambda: client.instances().patch(project=project, instance=instance, body=body)
               .execute(), retry, action="update the Cloud SQL instance",
               resource=f"{project}/{instance}", project=project)
    return str(op["name"])


def pending_operations(client: Any, project: str, instance: str, *,
                       retry: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """Operations on ``instance`` that are not DONE yet (to resume waiting after Ctrl-C)."""
    answer = _call(lambda: client.operations().list(project=project, instance=instance)
                   .execute(), retry, action="list the instance's operations",
                   resource=f"{project}/{instance}", project=project)
    return [op for op in answer.get("items", [])
            if op.get("status") != "DONE" and op.get("targetId", instance) == instance]


def wait_operation(client: Any, project: str, operation: str, *,
                   on_progress: OperationCallback | None = None, poll: float = 2.0,
                   sleep: Callable[[float], None] = time.sleep,
                   retry: RetryPolicy | None = None, max_polls: int = 3600) -> dict[str, Any]:
    """Poll ``operation`` until DONE; raise :class:`CollabError` with Google's message on error.

    ``on_progress`` is called after every poll; an exception it raises (KeyboardInterrupt from
    the CLI) stops the wait and leaves the operation running on Google's side.
    """
    start = time.monotonic()
    polls = 0
    while True:
        op = _call(lambda: client.operations().get(project=project, operation=operation)
                   .execute(), retry, action="follow the Cloud SQL operation",
                   resource=f"{project}/operations/{operation}", project=project)
        polls += 1
        if on_progress is not None:
            on_progress(OperationProgress(operation, str(op.get("operationType", "")),
                                          str(op.get("status", "")), polls,
                                          time.monotonic() - start))
        if op.get("status") == "DONE":
            break
        if polls >= max_polls:
            raise CollabError(f"Cloud SQL operation {operation} is still running",
                              "re-run the command later: it resumes where it stopped")
        sleep(poll)
    errors = (op.get("error") or {}).get("errors") or []
    if errors:
        text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
        raise CollabError(f"Cloud SQL operation {op.get('operationType')} on "
                          f"{op.get('targetId')} failed: {text}",
                          "fix the cause Google names, then re-run")
    return dict(op)


def get_database(client: Any, project: str, instance: str, database: str, *,
                 retry: RetryPolicy | None = None) -> dict[str, Any] | None:
    """The database resource, or None if it (or the instance) does not exist."""
    return _get_or_none(lambda: client.databases().get(project=project, instance=instance,
                                                       database=database).execute(),
                        retry, action="read the database",
                        resource=f"{project}/{instance}/{database}", project=project)


def insert_database(client: Any, project: str, instance: str, database: str, *,
                    charset: str = "utf8mb4", collation: str = "utf8mb4_general_ci",
                    retry: RetryPolicy | None = None) -> str:
    """Create ``database`` (utf8mb4); returns the operation name."""
    body = {"name": database, "charset": charset, "collation": collation}
    op = _call(lambda: client.databases().insert(project=project, instance=instance, body=body)
               .execute(), retry, action="create the database",
               resource=f"{project}/{instance}/{database}", project=project)
    return str(op["name"])


def list_users(client: Any, project: str, instance: str, *,
               retry: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """The instance's database users (``name``, ``type``, ``host`` for built-in users)."""
    answer = _call(lambda: client.users().list(project=project, instance=instance).execute(),
                   retry, action="list the database users", resource=f"{project}/{instance}",
                   project=project)
    return list(answer.get("items", []))


def insert_user(client: Any, project: str, instance: str, name: str, user_type: str, *,
                password: str | None = None, host: str = "%",
                retry: RetryPolicy | None = None) -> str:
    """Create a database user: ``CLOUD_IAM_USER``, ``CLOUD_IAM_SERVICE_ACCOUNT`` or
    ``BUILT_IN`` (with ``password``). Returns the operation name."""
    body: dict[str, Any] = {"name": name, "type": user_type}
    if user_type == "BUILT_IN":
        body.update(host=host, password=password)
    op = _call(lambda: client.users().insert(project=project, instance=instance, body=body)
               .execute(), retry, action=f"create the database user {name}",
               resource=f"{project}/{instance}", project=project)
    return str(op["name"])


def update_user_password(client: Any, project: str, instance: str, name: str, password: str,
                         *, host: str = "%", retry: RetryPolicy | None = None) -> str:
    """Set a new password on the built-in user ``name@host``. Returns the operation name."""
    body = {"name": name, "host": host, "type": "BUILT_IN", "password": password}
    op = _call(lambda: client.users().update(project=project, instance=instance, name=name,
                                             host=host, body=body).execute(),
               retry, action=f"set the password of the database user {name}",
               resource=f"{project}/{instance}", project=project)
    return str(op["name"])


def iam_user_type(member: str) -> str:
    """The Cloud SQL user type for an IAM member (``user:`` or ``serviceAccount:``)."""
    return "CLOUD_IAM_SERVICE_ACCOUNT" if member.startswith("serviceAccount:") else "CLOUD_IAM_USER"


def iam_user_name(member: str) -> str:
    """The Admin API's name of the IAM database user of ``member``.

    >>> iam_user_name("user:alice@x.com")
    'alice@x.com'
    >>> iam_user_name("serviceAccount:sa@p.iam.gserviceaccount.com")
    'sa@p.iam'
    """
    email = member.partition(":")[2] or member
    return email.removesuffix(".gserviceaccount.com")


def iam_db_username(member: str) -> str:
    """The MySQL login name of ``member``'s IAM user (what the proxy/connector logs in as).

    >>> iam_db_username("user:alice@x.com")
    'alice'
    >>> iam_db_username("serviceAccount:sa@p.iam.gserviceaccount.com")
    'sa'
    """
    return iam_user_name(member).split("@")[0]


def connection_name(instance: dict[str, Any]) -> str:
    """``project:region:instance`` of an instance resource."""
    name = instance.get("connectionName")
    if name:
        return str(name)
    return f"{instance['project']}:{instance['region']}:{instance['name']}"
