"""What the ``vertex`` backend needs from Google besides Vertex AI itself: an Artifact Registry
Docker repository and its IAM policy, the runner service account and its IAM policy, whether the
caller may act as that account, and whether an image is in the registry.

Clients are discovery clients (``artifactregistry v1``, ``iam v1``; the library is already a
dependency for Cloud SQL Admin), built on first use. Endpoint overrides for tests:
``COLLAB_ARTIFACTREGISTRY_ENDPOINT`` and ``COLLAB_IAM_ENDPOINT``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from zenml_collab.errors import CollabError
from zenml_collab.google.propagation import Propagation, write_policy
from zenml_collab.infra.gcp.errors import translate
from zenml_collab.infra.gcp.retry import RetryPolicy, call_with_retry, status_of

ARTIFACTREGISTRY_ENV = "COLLAB_ARTIFACTREGISTRY_ENDPOINT"
IAM_ENV = "COLLAB_IAM_ENDPOINT"
ACT_AS = "iam.serviceAccounts.actAs"
ETAG_ATTEMPTS = 8
# LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE[:TAG][@sha256:DIGEST]
_AR_IMAGE = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[a-z0-9:.-]+)/"
                       r"(?P<repository>[a-z0-9_-]+)/(?P<image>[a-z0-9._/-]+?)"
                       r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def _discovery(api: str, credentials: Any, env: str) -> Any:
    from googleapiclient.discovery import build

    endpoint = os.environ.get(env) or None
    return build(api, "v1", credentials=credentials, static_discovery=True,
                 cache_discovery=False,
                 client_options={"api_endpoint": endpoint} if endpoint else None)


def artifactregistry_client(credentials: Any) -> Any:
    return _discovery("artifactregistry", credentials, ARTIFACTREGISTRY_ENV)


def iam_client(credentials: Any) -> Any:
    return _discovery("iam", credentials, IAM_ENV)


def probe_vertex(credentials: Any, project: str, region: str, *,
                 retry: RetryPolicy | None = None) -> None:
    """One cheap Vertex AI call (list one custom job): a disabled API answers
    SERVICE_DISABLED, raised as :class:`~zenml_collab.google.errors.ServiceDisabledError`."""
    from googleapiclient.discovery import build

    endpoint = os.environ.get("COLLAB_VERTEX_ENDPOINT") or \
        f"https://{region}-aiplatform.googleapis.com/"
    client = build("aiplatform", "v1", credentials=credentials, static_discovery=True,
                   cache_discovery=False, client_options={"api_endpoint": endpoint})
    parent = f"projects/{project}/locations/{region}"
    try:
        jobs = client.projects().locations().customJobs()
        _call(jobs.list(parent=parent, pageSize=1).execute, retry, action="list Vertex AI jobs",
              resource=parent, project=project)
    finally:
        client.close()


def repository_name(project: str, region: str, repository: str) -> str:
    return f"projects/{project}/locations/{region}/repositories/{repository}"


def service_account_email(project: str, account_id: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def _call(fn: Callable[[], Any], retry: RetryPolicy | None, *, action: str, resource: str,
          project: str | None, missing_ok: bool = False) -> Any:
    try:
        return call_with_retry(fn, retry)
    except Exception as exc:
        if missing_ok and status_of(exc) == 404:
            return None
        raise translate(exc, action=action, resource=resource, project=project) from exc


# -- Artifact Registry ---------------------------------------------------------------------
def get_repository(client: Any, name: str, *, retry: RetryPolicy | None = None
                   ) -> dict[str, Any] | None:
    """The repository, or None when it does not exist."""
    repos = client.projects().locations().repositories()
    return _call(lambda: repos.get(name=name).execute(), retry, missing_ok=True,
                 action="read the Artifact Registry repository", resource=name,
                 project=name.split("/")[1])


def create_repository(client: Any, project: str, region: str, repository: str, *,
                      retry: RetryPolicy | None = None, poll: float = 2.0,
                      sleep: Callable[[float], None] = time.sleep, max_polls: int = 150) -> None:
    """Create a Docker repository in ``region`` and wait for the operation."""
    parent = f"projects/{project}/locations/{region}"
    locations = client.projects().locations()
    body = {"format": "DOCKER",
            "description": "zenml-collab step images (collab image build --push)"}
    op = _call(lambda: locations.repositories().create(
        parent=parent, repositoryId=repository, body=body).execute(), retry,
        action="create the Artifact Registry repository", resource=parent, project=project)
    polls = 0
    while not op.get("done"):
        if polls >= max_polls:
            raise CollabError(f"creating {repository} in {region} did not finish",
                              "check the Cloud console, then re-run")
        sleep(poll)
        polls += 1
        name = op["name"]
        op = _call(locations.operations().get(name=name).execute, retry,
                   action="wait for the repository", resource=name, project=project)
    if op.get("error"):
        raise CollabError(f"creating repository {repository} failed: "
                          f"{op['error'].get('message', op['error'])}",
                          "check your permissions (roles/artifactregistry.admin)")


def _add_bindings(get: Callable[[], dict[str, Any]], put: Callable[[dict[str, Any]], Any],
                  wanted: Mapping[str, Iterable[str]], what: str,
                  propagation: Propagation | None) -> bool:
    """Read-modify-write of a resource IAM policy (etag-guarded); whether it changed. A new
    service account of ``propagation`` that IAM does not know yet is waited for, re-reading
    the policy before each new write."""
    return write_policy(lambda: _add_bindings_once(get, put, wanted, what), propagation, what)


def _add_bindings_once(get: Callable[[], dict[str, Any]], put: Callable[[dict[str, Any]], Any],
                       wanted: Mapping[str, Iterable[str]], what: str) -> bool:
    for _ in range(ETAG_ATTEMPTS):
        policy = get()
        bindings = {b["role"]: list(b.get("members", [])) for b in policy.get("bindings", [])
                    if "condition" not in b}
        changed = False
        for role, members in wanted.items():
            have = bindings.setdefault(role, [])
            for member in members:
                if member not in have:
                    have.append(member)
                    changed = True
        if not changed:
            return False
        conditional = [b for b in policy.get("bindings", []) if "condition" in b]
        new = {"etag": policy.get("etag"), "version": policy.get("version", 1),
               "bindings": [{"role": r, "members": m} for r, m in sorted(bindings.items()) if m]
               + conditional}
        try:
            put(new)
            return True
        except CollabError:
            raise
        except Exception as exc:
            if status_of(exc) == 409:
                continue
            raise
    raise CollabError(f"the IAM policy of {what} kept changing while we edited it",
                      "someone else is editing it right now: wait a minute and re-run")


def repository_bindings(client: Any, name: str, *, retry: RetryPolicy | None = None
                        ) -> dict[str, list[str]]:
    repos = client.projects().locations().repositories()
    policy = _call(lambda: repos.getIamPolicy(resource=name).execute(), retry,
                   action="read the repository's IAM policy", resource=name,
                   project=name.split("/")[1])
    return {b["role"]: list(b.get("members", [])) for b in policy.get("bindings", [])}


def add_repository_bindings(client: Any, name: str, wanted: Mapping[str, Iterable[str]], *,
                            retry: RetryPolicy | None = None,
                            propagation: Propagation | None = None) -> bool:
    """Grant ``{role: [members]}`` on the repository only; whether its policy changed."""
    repos = client.projects().locations().repositories()
    project = name.split("/")[1]

    def get() -> dict[str, Any]:
        return dict(_call(lambda: repos.getIamPolicy(resource=name).execute(), retry,
                          action="read the repository's IAM policy", resource=name,
                          project=project))

    def put(policy: dict[str, Any]) -> Any:
        try:
            return call_with_retry(lambda: repos.setIamPolicy(
                resource=name, body={"policy": policy}).execute(), retry)
        except Exception as exc:
            if status_of(exc) == 409:
                raise
            raise translate(exc, action="update the repository's IAM policy", resource=name,
                            project=project) from exc

    return _add_bindings(get, put, wanted, name, propagation)


@dataclass(frozen=True)
class ImageRef:
    """An Artifact Registry image reference, parsed."""

    location: str
    project: str
    repository: str
    image: str
    tag: str | None
    digest: str | None

    @property
    def repository_name(self) -> str:
        return repository_name(self.project, self.location, self.repository)


def parse_image(reference: str) -> ImageRef | None:
    """``LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE[:TAG][@DIGEST]``; None for another host."""
    found = _AR_IMAGE.match(reference)
    if found is None:
        return None
    g = found.groupdict()
    return ImageRef(g["location"], g["project"], g["repository"], g["image"], g["tag"],
                    g["digest"])


def find_image(client: Any, ref: ImageRef, *, retry: RetryPolicy | None = None
               ) -> dict[str, Any] | None:
    """The registry's record of ``ref`` (by digest, else by tag, else ``latest``), or None."""
    images = client.projects().locations().repositories().dockerImages()
    name = ref.repository_name
    if ref.digest:
        full = f"{name}/dockerImages/{quote(ref.image, safe='')}@{ref.digest}"
        found: dict[str, Any] | None = _call(
            lambda: images.get(name=full).execute(), retry, missing_ok=True,
            action="look the image up", resource=full, project=ref.project)
        return found
    tag = ref.tag or "latest"
    token: str | None = None
    while True:
        page = _call(images.list(parent=name, pageToken=token).execute, retry,
                     missing_ok=True, action="list the repository's images", resource=name,
                     project=ref.project) or {}
        for image in page.get("dockerImages", []):
            uri = str(image.get("uri", ""))
            if uri.split("@")[0].endswith(f"/{ref.image}") and tag in image.get("tags", []):
                return dict(image)
        token = page.get("nextPageToken")
        if not token:
            return None


# -- service accounts ----------------------------------------------------------------------
def get_service_account(client: Any, email: str, *, retry: RetryPolicy | None = None
                        ) -> dict[str, Any] | None:
    accounts = client.projects().serviceAccounts()
    name = f"projects/-/serviceAccounts/{email}"
    return _call(lambda: accounts.get(name=name).execute(), retry, missing_ok=True,
                 action="read the service account", resource=name, project=None)


def create_service_account(client: Any, project: str, account_id: str, display_name: str, *,
                           retry: RetryPolicy | None = None) -> dict[str, Any]:
    accounts = client.projects().serviceAccounts()
    body = {"accountId": account_id, "serviceAccount": {"displayName": display_name}}
    created: dict[str, Any] = _call(
        lambda: accounts.create(name=f"projects/{project}", body=body).execute(), retry,
        action="create the service account", resource=f"projects/{project}", project=project)
    return created


def add_service_account_bindings(client: Any, email: str, wanted: Mapping[str, Iterable[str]],
                                 *, retry: RetryPolicy | None = None,
                                 propagation: Propagation | None = None) -> bool:
    """Grant ``{role: [members]}`` on the service account only; whether it changed."""
    accounts = client.projects().serviceAccounts()
    resource = f"projects/-/serviceAccounts/{email}"

    def get() -> dict[str, Any]:
        return dict(_call(lambda: accounts.getIamPolicy(resource=resource).execute(), retry,
                          action="read the service account's IAM policy", resource=resource,
                          project=None))

    def put(policy: dict[str, Any]) -> Any:
        try:
            return call_with_retry(lambda: accounts.setIamPolicy(
                resource=resource, body={"policy": policy}).execute(), retry)
        except Exception as exc:
            if status_of(exc) == 409:
                raise
            raise translate(exc, action="update the service account's IAM policy",
                            resource=resource, project=None) from exc

    return _add_bindings(get, put, wanted, f"service account {email}", propagation)


def service_account_bindings(client: Any, email: str, *, retry: RetryPolicy | None = None
                             ) -> dict[str, list[str]]:
    accounts = client.projects().serviceAccounts()
    resource = f"projects/-/serviceAccounts/{email}"
    policy = _call(lambda: accounts.getIamPolicy(resource=resource).execute(), retry,
                   action="read the service account's IAM policy", resource=resource,
                   project=None)
    return {b["role"]: list(b.get("members", [])) for b in policy.get("bindings", [])}


def can_act_as(client: Any, email: str, *, retry: RetryPolicy | None = None) -> bool:
    """Whether the caller holds ``iam.serviceAccounts.actAs`` on ``email``."""
    accounts = client.projects().serviceAccounts()
    resource = f"projects/-/serviceAccounts/{email}"
    answer = _call(lambda: accounts.testIamPermissions(
        resource=resource, body={"permissions": [ACT_AS]}).execute(), retry,
        action="check actAs on the runner account", resource=resource, project=None)
    return ACT_AS in (answer or {}).get("permissions", [])
