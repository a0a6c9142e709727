"""Artifact Registry repositories and images, and IAM service accounts: the calls that
``collab bootstrap --compute vertex`` and doctor's compute checks make.

Served (discovery-validated like every other route):

* ``artifactregistry.projects.locations.repositories`` get / list / create (a done long-running
  operation, as Google answers a small create) / getIamPolicy / setIamPolicy /
  testIamPermissions, ``...repositories.dockerImages`` list / get, ``...operations.get``;
* ``iam.projects.serviceAccounts`` get / create (the account's policy calls live in
  :mod:`.vertex`, which checks ``actAs`` against them).

Permissions are checked on the project and, for a repository, on its own policy too, with
Google's error bodies. Tests put images into a repository with :func:`push_image`.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from zenml_collab.testing.fake_gcp import errors, iam
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import Policy, now_rfc3339

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP


@dataclass
class Repository:
    name: str  # projects/P/locations/L/repositories/R
    body: dict[str, Any]
    policy: Policy = field(default_factory=Policy)
    images: list[dict[str, Any]] = field(default_factory=list)
    create_time: str = field(default_factory=now_rfc3339)

    def to_json(self) -> dict[str, Any]:
        return {**self.body, "name": self.name, "createTime": self.create_time,
                "updateTime": self.create_time}


@dataclass
class RegistryState:
    repositories: dict[str, Repository] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> resource


_STATES: weakref.WeakKeyDictionary[Any, RegistryState] = weakref.WeakKeyDictionary()


def state_of(fake: FakeGCP) -> RegistryState:
    with fake.world.lock:
        return _STATES.setdefault(fake, RegistryState())


def push_image(fake: FakeGCP, project: str, location: str, repository: str, image: str,
               tags: tuple[str, ...] = ("latest",)) -> str:
    """Put ``image`` into a repository (created if needed); returns its ``sha256:`` digest."""
    digest = "sha256:" + hashlib.sha256(f"{repository}/{image}/{tags}".encode()).hexdigest()
    name = f"projects/{project}/locations/{location}/repositories/{repository}"
    with fake.world.lock:
        repo = state_of(fake).repositories.setdefault(
            name, Repository(name, {"format": "DOCKER"}))
        host = f"{location}-docker.pkg.dev/{project}/{repository}/{image}"
        repo.images.append({
            "name": f"{name}/dockerImages/{quote(image, safe='')}@{digest}",
            "uri": f"{host}@{digest}", "tags": list(tags), "imageSizeBytes": "1024",
            "uploadTime": now_rfc3339(), "updateTime": now_rfc3339(),
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json"})
    return digest


# -- Artifact Registry -------------------------------------------------------------------
def _denied(permission: str, resource: str) -> errors.GoogleError:
    return errors.error(
        403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
        status="PERMISSION_DENIED", details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
            "domain": "artifactregistry.googleapis.com",
            "metadata": {"permission": permission, "resource": resource}}])


def _project(fake: FakeGCP, call: Call, permission: str, resource: str) -> Any:
    project = fake.world.find_project(call.params["projectsId"])
    if project is None:
        raise _denied(permission, resource)
    return project


def _allowed(project: Any, repo: Repository | None, principal: str, permission: str) -> bool:
    if iam.has_project_permission(project, principal, permission):
        return True
    return repo is not None and any(
        principal in members and iam.role_grants(role, permission)
        for role, members in repo.policy.bindings.items())


def _repo_name(call: Call) -> str:
    p = call.params
    return f"projects/{p['projectsId']}/locations/{p['locationsId']}/repositories/" \
           f"{p['repositoriesId']}"


def _repo(fake: FakeGCP, call: Call, permission: str) -> Repository:
    name = _repo_name(call)
    project = _project(fake, call, permission, name)
    repo = state_of(fake).repositories.get(_canonical(fake, name))
    if not _allowed(project, repo, call.principal, permission):
        raise _denied(permission, name)
    if repo is None:
        raise errors.error(404, "Requested entity was not found.", status="NOT_FOUND")
    return repo


def _canonical(fake: FakeGCP, name: str) -> str:
    """Repository names are kept with the project id (a number in the path is accepted)."""
    parts = name.split("/")
    project = fake.world.find_project(parts[1])
    if project is not None:
        parts[1] = project.project_id
    return "/".join(parts)


def get_repository(fake: FakeGCP, call: Call) -> Reply:
    return Reply(body=_repo(fake, call, "artifactregistry.repositories.get").to_json())


def create_repository(fake: FakeGCP, call: Call) -> Reply:
    parent = f"projects/{call.params['projectsId']}/locations/{call.params['locationsId']}"
    project = _project(fake, call, "artifactregistry.repositories.create", parent)
    if not iam.has_project_permission(project, call.principal,
                                      "artifactregistry.repositories.create"):
        raise _denied("artifactregistry.repositories.create", parent)
    repo_id = (call.query.get("repositoryId") or [""])[0]
    if not repo_id:
        raise errors.error(400, "repository_id is required", status="INVALID_ARGUMENT")
    name = _canonical(fake, f"{parent}/repositories/{repo_id}")
    repos = state_of(fake).repositories
    if name in repos:
        raise errors.error(409, f"the repository already exists: {name}",
                           status="ALREADY_EXISTS")
    body = {k: v for k, v in (call.body or {}).items() if k not in ("name", "createTime")}
    repos[name] = Repository(name, body)
    op_name = f"{parent}/operations/{hashlib.sha1(name.encode()).hexdigest()[:16]}"
    return Reply(body={"name": op_name, "done": True, "response": {
        "@type": "type.googleapis.com/google.devtools.artifactregistry.v1.Repository",
        **repos[name].to_json()}})


def list_repositories(fake: FakeGCP, call: Call) -> Reply:
    parent = f"projects/{call.params['projectsId']}/locations/{call.params['locationsId']}"
    project = _project(fake, call, "artifactregistry.repositories.list", parent)
    if not iam.has_project_permission(project, call.principal,
                                      "artifactregistry.repositories.list"):
        raise _denied("artifactregistry.repositories.list", parent)
    prefix = _canonical(fake, parent) + "/repositories/"
    found = [r.to_json() for n, r in sorted(state_of(fake).repositories.items())
             if n.startswith(prefix)]
    return Reply(body={"repositories": found} if found else {})


def get_operation(fake: FakeGCP, call: Call) -> Reply:
    p = call.params
    name = f"projects/{p['projectsId']}/locations/{p['locationsId']}/operations/{p['operationsId']}"
    _project(fake, call, "artifactregistry.repositories.get", name)
    return Reply(body={"name": name, "done": True})


def get_repo_policy(fake: FakeGCP, call: Call) -> Reply:
    repo = _repo(fake, call, "artifactregistry.repositories.getIamPolicy")
    return Reply(body={"version": 1, "etag": repo.policy.etag,
                       "bindings": repo.policy.to_json()})


def set_repo_policy(fake: FakeGCP, call: Call) -> Reply:
    repo = _repo(fake, call, "artifactregistry.repositories.setIamPolicy")
    wanted = (call.body or {}).get("policy", {})
    if wanted.get("etag") and wanted["etag"] != repo.policy.etag:
        raise errors.etag_conflict()
    iam.check_roles_known(wanted.get("bindings", []))
    fake.iam_propagation.check(wanted.get("bindings", []), repo.policy.bindings)
    repo.policy.replace(wanted.get("bindings", []))
    return Reply(body={"version": 1, "etag": repo.policy.etag,
                       "bindings": repo.policy.to_json()})


def test_repo_permissions(fake: FakeGCP, call: Call) -> Reply:
    name = _canonical(fake, _repo_name(call))
    project = _project(fake, call, "artifactregistry.repositories.get", name)
    repo = state_of(fake).repositories.get(name)
    asked = (call.body or {}).get("permissions", [])
    held = [p for p in asked if _allowed(project, repo, call.principal, p)]
    return Reply(body={"permissions": held} if held else {})


def list_images(fake: FakeGCP, call: Call) -> Reply:
    repo = _repo(fake, call, "artifactregistry.dockerimages.list")
    return Reply(body={"dockerImages": list(repo.images)} if repo.images else {})


def get_image(fake: FakeGCP, call: Call) -> Reply:
    repo = _repo(fake, call, "artifactregistry.dockerimages.get")
    wanted = unquote(call.params["dockerImagesId"])
    for image in repo.images:
        if unquote(image["name"].rsplit("/dockerImages/", 1)[1]) == wanted:
            return Reply(body=image)
    raise errors.error(404, "Requested entity was not found.", status="NOT_FOUND")


# -- IAM service accounts ----------------------------------------------------------------
def _account_email(fake: FakeGCP, call: Call) -> str:
    return call.params["serviceAccountsId"]


def get_account(fake: FakeGCP, call: Call) -> Reply:
    email = _account_email(fake, call)
    project = fake.world.find_project(email.partition("@")[2].partition(".")[0])
    resource = f"projects/-/serviceAccounts/{email}"
    if project is None or not iam.has_project_permission(project, call.principal,
                                                         "iam.serviceAccounts.get"):
        raise errors.error(403, "Permission 'iam.serviceAccounts.get' denied on resource "
                                f"{resource} (or it may not exist).", status="PERMISSION_DENIED")
    account = state_of(fake).accounts.get(email)
    if account is None:
        raise errors.error(404, f"Unknown service account {resource}", status="NOT_FOUND")
    return Reply(body=account)


def create_account(fake: FakeGCP, call: Call) -> Reply:
    project = fake.world.find_project(call.params["projectsId"])
    if project is None or not iam.has_project_permission(project, call.principal,
                                                         "iam.serviceAccounts.create"):
        raise errors.error(403, "Permission 'iam.serviceAccounts.create' denied on resource "
                                f"'projects/{call.params['projectsId']}' (or it may not exist).",
                           status="PERMISSION_DENIED")
    body = call.body or {}
    account_id = str(body.get("accountId", ""))
    if not 6 <= len(account_id) <= 30:
        raise errors.error(400, "accountId must be 6-30 characters", status="INVALID_ARGUMENT")
    email = f"{account_id}@{project.project_id}.iam.gserviceaccount.com"
    accounts = state_of(fake).accounts
    if email in accounts:
        raise errors.error(409, f"Service account {account_id} already exists within project "
                                f"projects/{project.project_id}.", status="ALREADY_EXISTS")
    spec = body.get("serviceAccount") or {}
    accounts[email] = {
        "name": f"projects/{project.project_id}/serviceAccounts/{email}",
        "projectId": project.project_id, "email": email,
        "uniqueId": str(100000000000000000000 + len(accounts)),
        "displayName": spec.get("displayName", ""), "description": spec.get("description", ""),
        "etag": "MDEwMjE5MjA=", "oauth2ClientId": str(200000000000000000000 + len(accounts))}
    if fake.authority.member(email) is None:
        fake.authority.add_member(email, "serviceAccount")
    fake.iam_propagation.account_created(email)  # a member of no policy yet, if delayed
    return Reply(body=accounts[email])


HANDLERS = {
    "artifactregistry.projects.locations.repositories.get": get_repository,
    "artifactregistry.projects.locations.repositories.create": create_repository,
    "artifactregistry.projects.locations.repositories.list": list_repositories,
    "artifactregistry.projects.locations.repositories.getIamPolicy": get_repo_policy,
    "artifactregistry.projects.locations.repositories.setIamPolicy": set_repo_policy,
    "artifactregistry.projects.locations.repositories.testIamPermissions": test_repo_permissions,
    "artifactregistry.projects.locations.repositories.dockerImages.list": list_images,
    "artifactregistry.projects.locations.repositories.dockerImages.get": get_image,
    "artifactregistry.projects.locations.operations.get": get_operation,
    "iam.projects.serviceAccounts.get": get_account,
    "iam.projects.serviceAccounts.create": create_account,
}
