"""Which permissions members and admins need, which roles grant them, and the gcloud commands
that grant a role.

:data:`ROLE_PERMISSIONS` is the product's table of the roles we grant or check (the fake in
``zenml_collab.testing`` may import it; product code never imports the fake). Its order matters:
roles are listed narrowest first, so :func:`least_role` can name the smallest role that grants a
permission.
"""

from __future__ import annotations

import fnmatch
import shlex
from typing import Literal

DbAuth = Literal["iam", "password"]

SQLADMIN_SERVICE = "sqladmin.googleapis.com"
STORAGE_SERVICE = "storage.googleapis.com"
REQUIRED_SERVICES: tuple[str, ...] = (SQLADMIN_SERVICE, STORAGE_SERVICE)

# Narrowest first (see module docstring). Patterns like "storage.objects.*" are globs.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/cloudsql.client": frozenset({"cloudsql.instances.connect", "cloudsql.instances.get"}),
    "roles/cloudsql.instanceUser": frozenset({"cloudsql.instances.get",
                                              "cloudsql.instances.login"}),
    "roles/storage.legacyBucketReader": frozenset({"storage.buckets.get",
                                                   "storage.objects.list"}),
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/storage.objectAdmin": frozenset({"storage.objects.*", "storage.multipartUploads.*"}),
    "roles/resourcemanager.projectIamAdmin": frozenset({
        "resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy"}),
    "roles/serviceusage.serviceUsageConsumer": frozenset({"serviceusage.services.get",
                                                          "serviceusage.services.list",
                                                          "serviceusage.services.use"}),
    "roles/serviceusage.serviceUsageAdmin": frozenset({"serviceusage.*"}),
    "roles/cloudsql.admin": frozenset({"cloudsql.*", "resourcemanager.projects.get"}),
    "roles/storage.admin": frozenset({"storage.*", "resourcemanager.projects.get"}),
    # Legacy roles last: we name them only when nothing else grants the permission.
    "roles/storage.legacyBucketWriter": frozenset({"storage.buckets.get", "storage.objects.list",
                                                   "storage.objects.create",
                                                   "storage.objects.delete"}),
    "roles/storage.legacyBucketOwner": frozenset({"storage.buckets.get", "storage.buckets.update",
                                                  "storage.buckets.getIamPolicy",
                                                  "storage.buckets.setIamPolicy",
                                                  "storage.objects.list",
                                                  "storage.objects.create",
                                                  "storage.objects.delete"}),
    "roles/viewer": frozenset({"cloudsql.instances.get", "cloudsql.instances.list",
                               "cloudsql.databases.get", "cloudsql.databases.list",
                               "cloudsql.users.list", "resourcemanager.projects.get",
                               "resourcemanager.projects.getIamPolicy",
                               "serviceusage.services.get", "serviceusage.services.list",
                               "storage.buckets.list"}),
    "roles/editor": frozenset({"cloudsql.*", "storage.buckets.create", "storage.buckets.get",
                               "storage.buckets.list", "storage.buckets.update",
                               "storage.buckets.delete", "storage.objects.*",
                               "serviceusage.*", "resourcemanager.projects.get"}),
    "roles/owner": frozenset({"*"}),
}

# What a member needs on the project to reach the database (login only with IAM DB auth).
MEMBER_PROJECT_PERMISSIONS: dict[DbAuth, tuple[str, ...]] = {
    "iam": ("cloudsql.instances.connect", "cloudsql.instances.get", "cloudsql.instances.login"),
    "password": ("cloudsql.instances.connect", "cloudsql.instances.get"),
}
# What a member needs on the artifact bucket.
MEMBER_BUCKET_PERMISSIONS: tuple[str, ...] = (
    "storage.buckets.get", "storage.objects.create", "storage.objects.get",
    "storage.objects.list", "storage.objects.delete",
)
# What `collab bootstrap` needs on the project, checked before any change.
ADMIN_PROJECT_PERMISSIONS: tuple[str, ...] = (
    "cloudsql.instances.create", "cloudsql.instances.get", "cloudsql.instances.list",
    "cloudsql.instances.update", "cloudsql.databases.create", "cloudsql.databases.get",
    "cloudsql.users.create", "cloudsql.users.list",
    "resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy",
    "serviceusage.services.get",
    "storage.buckets.create", "storage.buckets.get", "storage.buckets.update",
    "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy",
)
# Needed only when an API has to be enabled.
ENABLE_SERVICE_PERMISSION = "serviceusage.services.enable"

PROJECT_MEMBER_ROLES: dict[DbAuth, tuple[str, ...]] = {
    "iam": ("roles/cloudsql.client", "roles/cloudsql.instanceUser"),
    "password": ("roles/cloudsql.client",),
}
# Bucket-level only: no member gets a project-wide storage role.
BUCKET_MEMBER_ROLES: tuple[str, ...] = ("roles/storage.objectAdmin",
                                        "roles/storage.legacyBucketReader")
_BASIC_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})


def role_grants(role: str, permission: str) -> bool:
    """Whether ``role`` includes ``permission`` (honouring patterns like ``cloudsql.*``)."""
    return any(fnmatch.fnmatchcase(permission, p) for p in ROLE_PERMISSIONS.get(role, ()))


def least_role(permission: str) -> str:
    """The narrowest predefined role that grants ``permission``.

    >>> least_role("cloudsql.instances.create")
    'roles/cloudsql.admin'
    >>> least_role("cloudsql.instances.login")
    'roles/cloudsql.instanceUser'
    """
    for role in ROLE_PERMISSIONS:
        if role not in _BASIC_ROLES and role_grants(role, permission):
            return role
    return "roles/owner"


# The role an admin running `collab bootstrap` should hold for each area (broader than
# least_role on purpose: an admin creates and edits, not just reads).
_ADMIN_ROLES = (
    ("cloudsql.", "roles/cloudsql.admin"),
    ("storage.", "roles/storage.admin"),
    ("resourcemanager.projects.", "roles/resourcemanager.projectIamAdmin"),
    ("serviceusage.", "roles/serviceusage.serviceUsageAdmin"),
)


def admin_role(permission: str) -> str:
    """The predefined admin role for ``permission``'s area (see :data:`_ADMIN_ROLES`).

    >>> admin_role("cloudsql.instances.get")
    'roles/cloudsql.admin'
    """
    for prefix, role in _ADMIN_ROLES:
        if permission.startswith(prefix) and role_grants(role, permission):
            return role
    return least_role(permission)


def member_roles(db_auth: DbAuth) -> tuple[str, ...]:
    """The project roles each member gets for ``db_auth``."""
    return PROJECT_MEMBER_ROLES[db_auth]


def normalise_member(member: str) -> str:
    """``user:a@x.com`` / ``serviceAccount:...`` as IAM spells them; a bare email becomes one.

    >>> normalise_member("sa@p.iam.gserviceaccount.com")
    'serviceAccount:sa@p.iam.gserviceaccount.com'
    """
    member = member.strip()
    if ":" in member:
        kind, _, email = member.partition(":")
        return f"{kind}:{email}"
    kind = "serviceAccount" if member.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{member}"


def grant_command(member: str, role: str, *, project: str | None = None,
                  bucket: str | None = None) -> str:
    """The gcloud command an admin runs to grant ``role`` to ``member``.

    >>> grant_command("user:a@x.com", "roles/cloudsql.client", project="p")
    'gcloud projects add-iam-policy-binding p --member=user:a@x.com --role=roles/cloudsql.client'
    """
    if bucket is not None:
        return (f"gcloud storage buckets add-iam-policy-binding {shlex.quote('gs://' + bucket)} "
                f"--member={shlex.quote(member)} --role={shlex.quote(role)}")
    if project is None:
        raise ValueError("grant_command needs a project or a bucket")
    return (f"gcloud projects add-iam-policy-binding {shlex.quote(project)} "
            f"--member={shlex.quote(member)} --role={shlex.quote(role)}")


def member_bucket_role(permission: str) -> str:
    """The one member bucket role (of :data:`BUCKET_MEMBER_ROLES`) that grants ``permission``.

    Objects need objectAdmin (which includes reading: never objectViewer as well); only the
    bucket's own metadata needs legacyBucketReader.

    >>> member_bucket_role("storage.objects.get"), member_bucket_role("storage.buckets.get")
    ('roles/storage.objectAdmin', 'roles/storage.legacyBucketReader')
    """
    for role in BUCKET_MEMBER_ROLES:
        if role_grants(role, permission):
            return role
    return least_role(permission)


def enable_command(service: str, project: str) -> str:
    """The gcloud command that enables ``service`` in ``project``."""
    return f"gcloud services enable {shlex.quote(service)} --project {shlex.quote(project)}"
