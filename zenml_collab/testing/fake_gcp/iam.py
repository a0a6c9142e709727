"""IAM: the role -> permission table, permission checks, and Resource Manager v3 policy calls.

Only the roles zenml-collab grants or checks are modelled; setting any other role is refused the
way Resource Manager refuses an unknown role, so a typo in product code fails a test.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from zenml_collab.testing.fake_gcp import errors
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import BucketMeta, Policy, Project

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP
    from zenml_collab.testing.fake_gcp.state import World

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/owner": frozenset({"*"}),
    "roles/editor": frozenset({"cloudsql.*", "storage.buckets.create", "storage.buckets.get",
                               "storage.buckets.list", "storage.buckets.update",
                               "storage.buckets.delete", "storage.objects.*",
                               "serviceusage.*", "resourcemanager.projects.get"}),
    "roles/viewer": frozenset({"cloudsql.instances.get", "cloudsql.instances.list",
                               "cloudsql.databases.get", "cloudsql.databases.list",
                               "cloudsql.users.list", "resourcemanager.projects.get",
                               "resourcemanager.projects.getIamPolicy",
                               "serviceusage.services.get", "serviceusage.services.list",
                               "storage.buckets.list"}),
    "roles/cloudsql.admin": frozenset({"cloudsql.*", "resourcemanager.projects.get"}),
    "roles/cloudsql.client": frozenset({"cloudsql.instances.connect", "cloudsql.instances.get"}),
    "roles/cloudsql.instanceUser": frozenset({"cloudsql.instances.get",
                                              "cloudsql.instances.login"}),
    "roles/storage.admin": frozenset({"storage.*", "resourcemanager.projects.get"}),
    "roles/storage.objectAdmin": frozenset({"storage.objects.*", "storage.multipartUploads.*"}),
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/storage.legacyBucketReader": frozenset({"storage.buckets.get",
                                                   "storage.objects.list"}),
    "roles/storage.legacyBucketWriter": frozenset({"storage.buckets.get", "storage.objects.list",
                                                   "storage.objects.create",
                                                   "storage.objects.delete"}),
    "roles/storage.legacyBucketOwner": frozenset({"storage.buckets.get", "storage.buckets.update",
                                                  "storage.buckets.getIamPolicy",
                                                  "storage.buckets.setIamPolicy",
                                                  "storage.objects.list",
                                                  "storage.objects.create",
                                                  "storage.objects.delete"}),
    "roles/serviceusage.serviceUsageAdmin": frozenset({"serviceusage.*"}),
    "roles/serviceusage.serviceUsageConsumer": frozenset({"serviceusage.services.get",
                                                          "serviceusage.services.list",
                                                          "serviceusage.services.use"}),
    "roles/aiplatform.user": frozenset({"aiplatform.customJobs.*", "resourcemanager.projects.get"}),
    "roles/iam.serviceAccountUser": frozenset({"iam.serviceAccounts.actAs",
                                               "iam.serviceAccounts.get"}),
    "roles/resourcemanager.projectIamAdmin": frozenset({
        "resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy"}),
    # Artifact Registry and service accounts (bootstrap --compute vertex, fake_gcp.registry).
    "roles/artifactregistry.reader": frozenset({
        "artifactregistry.repositories.get", "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.dockerimages.*"}),
    "roles/artifactregistry.writer": frozenset({
        "artifactregistry.repositories.get", "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.repositories.uploadArtifacts", "artifactregistry.dockerimages.*",
        "artifactregistry.tags.*"}),
    "roles/artifactregistry.admin": frozenset({"artifactregistry.*"}),
    "roles/iam.serviceAccountAdmin": frozenset({
        "iam.serviceAccounts.get", "iam.serviceAccounts.list", "iam.serviceAccounts.create",
        "iam.serviceAccounts.update", "iam.serviceAccounts.delete",
        "iam.serviceAccounts.getIamPolicy", "iam.serviceAccounts.setIamPolicy"}),
}

# Which basic roles each legacy convenience member of a bucket policy stands for.
_CONVENIENCE = {
    "projectOwner": ("roles/owner",),
    "projectEditor": ("roles/owner", "roles/editor"),
    "projectViewer": ("roles/owner", "roles/editor", "roles/viewer"),
}


def role_grants(role: str, permission: str) -> bool:
    """Whether ``role`` includes ``permission`` (patterns like ``storage.objects.*``)."""
    return any(fnmatch.fnmatchcase(permission, p) for p in ROLE_PERMISSIONS.get(role, ()))


def _roles_in(policy: Policy, principal: str) -> set[str]:
    return {
        role for role, members in policy.bindings.items()
        if principal in members or "allAuthenticatedUsers" in members or "allUsers" in members
    }


def project_roles(project: Project | None, principal: str) -> set[str]:
    """Roles ``principal`` holds on ``project`` (none on an unknown project)."""
    return _roles_in(project.policy, principal) if project else set()


def has_project_permission(project: Project | None, principal: str, permission: str) -> bool:
    return any(role_grants(r, permission) for r in project_roles(project, principal))


def has_bucket_permission(world: World, bucket: BucketMeta, principal: str,
                          permission: str) -> bool:
    """Project-level grants plus the bucket's own policy (with its convenience members)."""
    project = world.projects.get(bucket.project)
    if has_project_permission(project, principal, permission):
        return True
    roles = _roles_in(bucket.policy, principal)
    basic = project_roles(project, principal)
    for role, members in bucket.policy.bindings.items():
        for member in members:
            kind, _, pid = member.partition(":")
            if kind in _CONVENIENCE and basic & set(_CONVENIENCE[kind]) and pid == bucket.project:
                roles.add(role)
    return any(role_grants(r, permission) for r in roles)


def check_roles_known(bindings: list[dict[str, object]]) -> None:
    """Refuse a policy naming a role the fake (and so our product) does not know."""
    for binding in bindings:
        role = str(binding.get("role", ""))
        if role not in ROLE_PERMISSIONS:
            raise errors.error(400, f"Role {role} is not supported for this resource.",
                               "badRequest", status="INVALID_ARGUMENT")


def _project_or_403(fake: FakeGCP, call: Call) -> Project:
    project = fake.world.find_project(call.params["projectsId"])
    if project is None:
        raise errors.caller_lacks_permission()
    return project


def _policy_json(policy: Policy) -> dict[str, object]:
    return {"version": 1, "etag": policy.etag, "bindings": policy.to_json()}


def get_iam_policy(fake: FakeGCP, call: Call) -> Reply:
    """``projects.getIamPolicy``: the policy with its current etag."""
    project = _project_or_403(fake, call)
    return Reply(body=_policy_json(project.policy))


def set_iam_policy(fake: FakeGCP, call: Call) -> Reply:
    """``projects.setIamPolicy``: replace the bindings; a stale etag gets 409 ABORTED."""
    project = _project_or_403(fake, call)
    policy = (call.body or {}).get("policy", {})
    etag = policy.get("etag")
    if etag and etag != project.policy.etag:
        raise errors.etag_conflict()
    check_roles_known(policy.get("bindings", []))
    fake.iam_propagation.check(policy.get("bindings", []), project.policy.bindings)
    project.policy.replace(policy.get("bindings", []))
    return Reply(body=_policy_json(project.policy))


def test_iam_permissions(fake: FakeGCP, call: Call) -> Reply:
    """``projects.testIamPermissions``: the subset of the asked permissions the caller has."""
    project = _project_or_403(fake, call)
    asked = (call.body or {}).get("permissions", [])
    held = [p for p in asked if has_project_permission(project, call.principal, p)]
    return Reply(body={"permissions": held} if held else {})


def get_project(fake: FakeGCP, call: Call) -> Reply:
    """``projects.get``: an existing project (unknown ones were refused with 403 already)."""
    project = _project_or_403(fake, call)
    return Reply(body={"name": f"projects/{project.number}", "projectId": project.project_id,
                       "state": "ACTIVE", "displayName": project.project_id,
                       "parent": "organizations/0"})


HANDLERS = {
    "cloudresourcemanager.projects.get": get_project,
    "cloudresourcemanager.projects.getIamPolicy": get_iam_policy,
    "cloudresourcemanager.projects.setIamPolicy": set_iam_policy,
    "cloudresourcemanager.projects.testIamPermissions": test_iam_permissions,
}

# Project-level permission each non-storage method needs (None: any authenticated caller).
METHOD_PERMISSIONS: dict[str, str | None] = {
    "cloudresourcemanager.projects.get": "resourcemanager.projects.get",
    "cloudresourcemanager.projects.getIamPolicy": "resourcemanager.projects.getIamPolicy",
    "cloudresourcemanager.projects.setIamPolicy": "resourcemanager.projects.setIamPolicy",
    "cloudresourcemanager.projects.testIamPermissions": None,
    "serviceusage.services.get": "serviceusage.services.get",
    "serviceusage.services.enable": "serviceusage.services.enable",
    "serviceusage.services.disable": "serviceusage.services.disable",
    "serviceusage.services.batchEnable": "serviceusage.services.enable",
    "serviceusage.services.list": "serviceusage.services.list",
    "serviceusage.operations.get": None,
    "sql.instances.insert": "cloudsql.instances.create",
    "sql.instances.get": "cloudsql.instances.get",
    "sql.instances.list": "cloudsql.instances.list",
    "sql.instances.patch": "cloudsql.instances.update",
    "sql.instances.update": "cloudsql.instances.update",
    "sql.instances.delete": "cloudsql.instances.delete",
    "sql.databases.insert": "cloudsql.databases.create",
    "sql.databases.get": "cloudsql.databases.get",
    "sql.databases.list": "cloudsql.databases.list",
    "sql.databases.delete": "cloudsql.databases.delete",
    "sql.users.insert": "cloudsql.users.create",
    "sql.users.list": "cloudsql.users.list",
    "sql.users.get": "cloudsql.users.list",
    "sql.users.delete": "cloudsql.users.delete",
    "sql.users.update": "cloudsql.users.update",
    "sql.tiers.list": None,
    "sql.flags.list": None,
    "sql.operations.get": "cloudsql.instances.get",
    "sql.operations.list": "cloudsql.instances.list",
    "sql.connect.get": "cloudsql.instances.get",
    "sql.connect.generateEphemeralCert": "cloudsql.instances.connect",
}
