"""Resource Manager v3 (REST): the project, its IAM policy and the caller's permissions on it.

``client`` is a ``google.cloud.resourcemanager_v3.ProjectsClient`` (see
:func:`zenml_collab.infra.gcp.clients.projects_client`). Policies are the raw protobuf
``google.iam.v1.policy_pb2.Policy`` the client returns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from zenml_collab.errors import CollabError
from zenml_collab.google.propagation import Propagation, write_policy
from zenml_collab.infra.gcp.errors import translate
from zenml_collab.infra.gcp.retry import RetryPolicy, call_with_retry, status_of

POLICY_VERSION = 3  # ask for conditional bindings too, so a write never drops them
ETAG_ATTEMPTS = 8


def _resource(project: str) -> str:
    return f"projects/{project}"


def get_project(client: Any, project: str, *, retry: RetryPolicy | None = None) -> Any:
    """The project (``name`` is ``projects/<number>``, ``project_id``, ``state``)."""
    try:
        return call_with_retry(lambda: client.get_project(
            request={"name": _resource(project)}, retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="read the project", resource=_resource(project),
                        project=project) from exc


def get_iam_policy(client: Any, project: str, *, retry: RetryPolicy | None = None) -> Any:
    """The project's IAM policy (version 3, with its etag)."""
    try:
        return call_with_retry(lambda: client.get_iam_policy(
            request={"resource": _resource(project),
                     "options": {"requested_policy_version": POLICY_VERSION}},
            retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="read the project's IAM policy",
                        resource=_resource(project), project=project) from exc


def test_permissions(client: Any, project: str, permissions: Iterable[str], *,
                     retry: RetryPolicy | None = None) -> set[str]:
    """The subset of ``permissions`` the caller holds on ``project``."""
    asked = sorted(set(permissions))
    try:
        answer = call_with_retry(lambda: client.test_iam_permissions(
            request={"resource": _resource(project), "permissions": asked}, retry=None), retry)
    except Exception as exc:
        raise translate(exc, action="check your permissions", resource=_resource(project),
                        project=project) from exc
    return set(answer.permissions)


def members_with(policy: Any, member: str) -> set[str]:
    """Roles ``member`` holds in ``policy`` (unconditional and conditional bindings).

    Works on both policy kinds: Resource Manager's protobuf bindings and the storage
    library's dict bindings (``buckets.get_bucket_policy``).
    """
    roles: set[str] = set()
    for b in policy.bindings:
        role, members = ((b["role"], b.get("members", ())) if isinstance(b, dict)
                         else (b.role, b.members))
        if member in members:
            roles.add(role)
    return roles


def missing_bindings(policy: Any, wanted: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """``{role: [members]}`` of ``wanted`` not already granted unconditionally."""
    have: dict[str, set[str]] = {}
    for binding in policy.bindings:
        if not binding.HasField("condition"):
            have.setdefault(binding.role, set()).update(binding.members)
    out: dict[str, list[str]] = {}
    for role, members in wanted.items():
        absent = [m for m in members if m not in have.get(role, set())]
        if absent:
            out[role] = absent
    return out


def merge_bindings(policy: Any, wanted: Mapping[str, Iterable[str]]) -> bool:
    """Add ``wanted`` to ``policy`` in place, keeping every existing binding; True if changed."""
    missing = missing_bindings(policy, wanted)
    for role, members in missing.items():
        target = next((b for b in policy.bindings
                       if b.role == role and not b.HasField("condition")), None)
        if target is None:
            target = policy.bindings.add(role=role)
        target.members.extend(members)
    if missing and any(b.HasField("condition") for b in policy.bindings):
        policy.version = POLICY_VERSION
    return bool(missing)


def add_bindings(client: Any, project: str, wanted: Mapping[str, Iterable[str]], *,
                 retry: RetryPolicy | None = None,
                 propagation: Propagation | None = None) -> bool:
    """Grant ``{role: [members]}`` on ``project``; returns whether the policy changed.

    Read-modify-write: a concurrent edit makes ``setIamPolicy`` fail on the etag (409
    ABORTED); we then re-read and merge again, so the other edit survives. Nothing is written
    when every binding is already there. A member among ``propagation``'s new service accounts
    that IAM does not know yet is waited for (:mod:`zenml_collab.google.propagation`),
    re-reading the policy before each new write.
    """
    return write_policy(lambda: _add_bindings_once(client, project, wanted, retry),
                        propagation, f"project {project}")


def _add_bindings_once(client: Any, project: str, wanted: Mapping[str, Iterable[str]],
                       retry: RetryPolicy | None) -> bool:
    from google.api_core import exceptions as core

    for _ in range(ETAG_ATTEMPTS):
        policy = get_iam_policy(client, project, retry=retry)
        if not merge_bindings(policy, wanted):
            return False
        try:
            call_with_retry(functools.partial(
                client.set_iam_policy,
                request={"resource": _resource(project), "policy": policy}, retry=None), retry)
            return True
        except (core.Conflict, core.Aborted):
            continue
        except Exception as exc:
            if status_of(exc) == 409:
                continue
            raise translate(exc, action="update the project's IAM policy",
                            resource=_resource(project), project=project) from exc
    raise CollabError(
        f"the IAM policy of project {project} kept changing while we edited it",
        "someone else is editing it right now: wait a minute and re-run")
