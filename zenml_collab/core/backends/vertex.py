"""The ``vertex`` backend: each executed step is a Vertex AI custom job.

The client is google-api-python-client's discovery client for ``aiplatform v1`` (already a
dependency for Cloud SQL Admin; imports in ~0.2 s, against ~2 s for google-cloud-aiplatform),
imported only when a vertex step is about to launch. Before the first job, the member's
permissions are checked (``aiplatform.customJobs.create`` on the project,
``iam.serviceAccounts.actAs`` on the runner account), so a missing grant fails with exit 3 and
the command that grants it, before anything is created. A job is polled with backoff; its
console link is logged; ``JOB_STATE_FAILED`` fails the step with the job's name, its error and
the message the worker recorded; Ctrl-C cancels every running job.

Inside the job the worker reaches Cloud SQL through the in-process connector with IAM database
login as the runner service account, and GCS with the same account (Application Default
Credentials: Vertex gives the job its account).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zenml_collab.core.backends.docker import local_image_digest, worker_command
from zenml_collab.core.backends.task import JOB_PARENT_ENV, StepTask
from zenml_collab.errors import (
    CollabError,
    ConfigError,
    ConnectivityError,
    PermissionDeniedError,
    StepFailedError,
)

if TYPE_CHECKING:
    from zenml_collab.config import ComputeConfig, Settings

log = logging.getLogger("zenml_collab.backends")
ENDPOINT_ENV = "COLLAB_VERTEX_ENDPOINT"
POLL_MAX_ENV = "COLLAB_VERTEX_POLL_MAX"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DONE = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def console_link(job_name: str) -> str:
    parts = job_name.split("/")  # projects/N/locations/R/customJobs/ID
    return (f"https://console.cloud.google.com/vertex-ai/locations/{parts[3]}/training/"
            f"{parts[5]}/cpu?project={parts[1]}")


def _http_error(exc: Any, what: str) -> CollabError:
    """Classify a googleapiclient HttpError (the API's own message is kept)."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    try:
        message = json.loads(exc.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = str(exc)
    if status in (401, 403):
        return PermissionDeniedError(f"{what}: {message}", "check your roles with `collab doctor`")
    if status in (429, 500, 502, 503, 504):
        return ConnectivityError(f"{what}: {message}", "retry in a minute")
    return CollabError(f"{what}: {message}", "see the message above")


class VertexBackend:
    name = "vertex"

    def __init__(self, *, project: str, region: str, image: str, stores: dict[str, Any],
                 service_account: str | None, machine_type: str, accelerator_type: str | None,
                 accelerator_count: int, credentials: Any,
                 failure_reason: Callable[[StepTask], str | None] | None = None) -> None:
        self.project, self.region, self.image = project, region, image
        self._stores = stores
        self.service_account = service_account
        self.machine: dict[str, Any] = {"machineType": machine_type}
        if accelerator_type and accelerator_count:
            self.machine.update(acceleratorType=accelerator_type, acceleratorCount=accelerator_count)
        self._credentials = credentials
        self._failure_reason = failure_reason
        self._local = threading.local()
        self._running: set[str] = set()
        self._services: list[Any] = []
        self._lock = threading.Lock()
        self.poll_max = float(os.environ.get(POLL_MAX_ENV, "30"))
        self._digest: str | None = None

    def _service(self, api: str, version: str, endpoint: str) -> Any:
        # One client per thread: httplib2 connections are not thread-safe.
        key = f"{api}.{version}"
        cached = getattr(self._local, key.replace(".", "_"), None)
        if cached is None:
            from googleapiclient.discovery import build

            cached = build(api, version, credentials=self._credentials, static_discovery=True,
                           cache_discovery=False, client_options={"api_endpoint": endpoint})
            setattr(self._local, key.replace(".", "_"), cached)
            with self._lock:
                self._services.append(cached)
        return cached

    @property
    def jobs(self) -> Any:
        endpoint = os.environ.get(ENDPOINT_ENV) or f"https://{self.region}-aiplatform.googleapis.com/"
        return self._service("aiplatform", "v1", endpoint).projects().locations().customJobs()

    def prepare(self) -> None:
        """Refuse early (exit 3) when the member cannot create jobs or act as the runner."""
        from googleapiclient.errors import HttpError

        rm_endpoint = os.environ.get("COLLAB_RESOURCEMANAGER_ENDPOINT") or \
            "https://cloudresourcemanager.googleapis.com/"
        try:
            rm = self._service("cloudresourcemanager", "v3", rm_endpoint.rstrip("/") + "/")
            held = rm.projects().testIamPermissions(
                resource=f"projects/{self.project}",
                body={"permissions": ["aiplatform.customJobs.create"]}).execute()
        except HttpError as exc:
            raise _http_error(exc, "checking Vertex AI permissions") from None
        member = getattr(self._credentials, "service_account_email", None) or "MEMBER"
        if "aiplatform.customJobs.create" not in held.get("permissions", []):
            raise PermissionDeniedError(
                f"you cannot create Vertex AI jobs in project {self.project} (missing "
                "aiplatform.customJobs.create, in roles/aiplatform.user)",
                f"ask an admin: gcloud projects add-iam-policy-binding {self.project} "
                f"--member=serviceAccount:{member} --role=roles/aiplatform.user "
                "(or run `collab bootstrap --compute vertex` with your email in members)")
        if self.service_account:
            iam_endpoint = os.environ.get(ENDPOINT_ENV) or "https://iam.googleapis.com/"
            try:
                iam = self._service("iam", "v1", iam_endpoint)
                held = iam.projects().serviceAccounts().testIamPermissions(
                    resource=f"projects/-/serviceAccounts/{self.service_account}",
                    body={"permissions": ["iam.serviceAccounts.actAs"]}).execute()
            except HttpError as exc:
                raise _http_error(exc, "checking actAs on the runner account") from None
            if "iam.serviceAccounts.actAs" not in held.get("permissions", []):
                raise PermissionDeniedError(
                    f"you cannot run jobs as {self.service_account} (missing "
                    "iam.serviceAccounts.actAs, in roles/iam.serviceAccountUser)",
                    f"ask an admin: gcloud iam service-accounts add-iam-policy-binding "
                    f"{self.service_account} --member=serviceAccount:{member} "
                    "--role=roles/iam.serviceAccountUser")

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def image_digest(self) -> str | None:
        """The image by digest: from a ``repo@sha256:…`` reference, else from the image this
        member built or pulled (``collab image build --push``), else the reference as given."""
        if self._digest is None:
            if "@" in self.image:
                self._digest = self.image.split("@", 1)[1]
            else:
                found = local_image_digest(self.image)
                self._digest = found.split("@", 1)[-1] if found else self.image
        return self._digest

    def job_body(self, task: StepTask) -> dict[str, Any]:
        command = worker_command(task)
        display = re.sub(r"[^a-zA-Z0-9_-]+", "-", f"collab-{task.pipeline_name}-{task.step_name}")
        spec: dict[str, Any] = {"workerPoolSpecs": [{
            "machineSpec": self.machine, "replicaCount": "1",
            "containerSpec": {"imageUri": self.image, "command": command[:3],
                              "args": command[3:],
                              "env": [{"name": "COLLAB_WORKER_STORES",
                                       "value": json.dumps(self._stores)},
                                      {"name": JOB_PARENT_ENV, "value": self.parent},
                                      {"name": "PYTHONUNBUFFERED", "value": "1"}]}}]}
        if self.service_account:
            spec["serviceAccount"] = self.service_account
        return {"displayName": display[:128], "jobSpec": spec,
                "labels": {"collab-run": task.run_id[:63]}}

    def execute(self, task: StepTask) -> None:
        from googleapiclient.errors import HttpError

        try:
            job = self.jobs.create(parent=self.parent, body=self.job_body(task)).execute()
        except HttpError as exc:
            raise _http_error(exc, f"creating the Vertex AI job of step {task.step_name!r}") from None
        name = job["name"]
        with self._lock:
            self._running.add(name)
        log.info("step %s: Vertex AI job %s: %s", task.step_name, name, console_link(name))
        try:
            job = self._wait(name)
        finally:
            with self._lock:
                self._running.discard(name)
        state = job.get("state")
        if state != "JOB_STATE_SUCCEEDED":
            error = (job.get("error") or {}).get("message") or state
            recorded = self._failure_reason(task) if self._failure_reason else None
            detail = f"{recorded}; " if recorded else ""
            raise StepFailedError(
                f"step {task.step_name!r} of pipeline {task.pipeline_name!r} failed on Vertex AI "
                f"job {name} ({state}): {detail}{error}",
                f"see the job's logs: {console_link(name)}")

    def _wait(self, name: str) -> dict[str, Any]:
        from googleapiclient.errors import HttpError

        delay = 0.2
        while True:
            try:
                job: dict[str, Any] = self.jobs.get(name=name).execute()
            except HttpError as exc:
                err = _http_error(exc, f"polling {name}")
                if not isinstance(err, ConnectivityError):
                    raise err from None
                job = {"state": "RETRY"}
            if job.get("state") in DONE:
                return job
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)

    def close(self) -> None:
        """Close every API client's connections (one per thread that polled)."""
        with self._lock:
            services, self._services = self._services, []
        for service in services:
            service.close()

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running)
        for name in running:
            try:
                self.jobs.cancel(name=name, body={}).execute()
                log.warning("cancelled Vertex AI job %s", name)
            except Exception as exc:  # best effort: the member sees the job in the console
                log.warning("could not cancel %s: %s", name, exc)


def _credentials(settings: Settings) -> Any:
    import google.auth

    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or settings.local.credentials_file
    if path:
        credentials, _ = google.auth.load_credentials_from_file(path, scopes=SCOPES)
    else:
        credentials, _ = google.auth.default(scopes=SCOPES)
    return credentials


def vertex_backend(settings: Settings, compute: ComputeConfig, image: str, artifacts: str,
                   failure_reason: Callable[[StepTask], str | None] | None = None
                   ) -> VertexBackend:
    """The backend for the team's settings; the job opens the stores as the runner account."""
    vertex = compute.vertex
    gcp = settings.team.gcp
    project = vertex.project or (gcp.project if gcp else None)
    region = vertex.region or (gcp.region if gcp else None)
    if not project or not region:
        raise ConfigError("the vertex backend needs a project and a region",
                          "set compute.vertex.project/region (or gcp:) in collab.yaml")
    meta = settings.metadata
    if meta.kind == "cloudsql":
        if not vertex.service_account:
            raise ConfigError("the vertex backend needs compute.vertex.service_account",
                              "run `collab bootstrap --compute vertex`")
        metadata: dict[str, Any] = {
            "kind": "cloudsql", "instance": meta.instance, "database": meta.database,
            "username": vertex.service_account.split("@")[0], "auth": "iam",
            "connector": "python"}
    elif meta.kind == "mysql" and os.environ.get("COLLAB_VERTEX_ALLOW_DIRECT_DB") == "1":
        # Tests only: a database the fake's containers reach directly; never with Google.
        metadata = meta.model_dump(mode="json", exclude_none=True)
        if meta.password is not None:
            metadata["password"] = meta.password.get_secret_value()
    else:
        raise ConfigError(f"a {meta.kind} metadata store cannot be reached from Vertex AI",
                          "use the team's Cloud SQL store (`collab join`)")
    if not artifacts.startswith("gs://"):
        raise ConfigError("a local artifact folder cannot be reached from Vertex AI",
                          "use the team's bucket (artifacts.uri: gs://...)")
    return VertexBackend(project=project, region=region, image=image,
                         stores={"metadata": metadata, "artifacts": artifacts},
                         service_account=vertex.service_account,
                         machine_type=vertex.machine_type,
                         accelerator_type=vertex.accelerator_type,
                         accelerator_count=vertex.accelerator_count,
                         credentials=_credentials(settings), failure_reason=failure_reason)
