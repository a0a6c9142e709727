"""Vertex AI custom jobs that really run: ``projects.locations.customJobs`` create/get/list/cancel.

A created job goes QUEUED -> PENDING -> RUNNING -> SUCCEEDED / FAILED, or CANCELLING ->
CANCELLED; RUNNING means its worker pool's container runs on the test dockerd (``DOCKER_HOST``)
with host networking, so it reaches the fakes on loopback, as the job's service account: the
fake writes that account's key file, mounts it read-only and points
``GOOGLE_APPLICATION_CREDENTIALS`` at it (Vertex gives a job its account through the metadata
server), and passes the fake's endpoints. ``CLOUD_ML_JOB_ID`` is set as Vertex sets it.

Creating a job needs ``aiplatform.customJobs.create`` on the project and, for the job's
service account, ``iam.serviceAccounts.actAs`` (project-wide or on the account), refused with
Google's error bodies. IAM's ``projects.serviceAccounts`` policy calls are served here too.

Faults (``fake.vertex.inject(kind)``, for the next job): ``"fail"`` (the job fails before its
container starts), ``"preempt"`` (the first container is killed after it started; the job
restarts it, as Vertex does on a worker restart), ``"hang"`` (the container sleeps until the job
is cancelled).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zenml_collab.testing.fake_gcp import errors, iam
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import Policy, now_rfc3339

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP

TERMINAL = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"})
KEY_IN_CONTAINER = "/var/run/fake-vertex/key.json"


@dataclass
class Job:
    name: str
    project: str
    location: str
    body: dict[str, Any]
    state: str = "JOB_STATE_QUEUED"
    create_time: str = field(default_factory=now_rfc3339)
    start_time: str | None = None
    end_time: str | None = None
    error: dict[str, Any] | None = None
    fault: str | None = None
    container_ids: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    logs: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.body, "name": self.name, "state": self.state,
                               "createTime": self.create_time, "updateTime": now_rfc3339()}
        if self.start_time:
            out["startTime"] = self.start_time
        if self.end_time:
            out["endTime"] = self.end_time
        if self.error:
            out["error"] = self.error
        return out


class VertexState:
    """The fake's Vertex AI: its jobs, service-account policies and pending faults."""

    def __init__(self, fake: FakeGCP) -> None:
        self.fake = fake
        self.jobs: dict[str, Job] = {}
        self.sa_policies: dict[str, Policy] = {}
        self.faults: list[str] = []
        self.queue_seconds = 0.2
        # Applied over the fake's endpoints in job containers (e.g. a direct fake-gcs-server).
        self.container_env: dict[str, str] = {}
        self._ids = itertools.count(1000001)
        self._threads: list[threading.Thread] = []

    def inject(self, kind: str) -> None:
        if kind not in ("fail", "preempt", "hang"):
            raise ValueError(f"unknown vertex fault {kind!r}")
        self.faults.append(kind)

    def grant_on_service_account(self, sa_email: str, role: str, member: str) -> None:
        with self.fake.world.lock:
            self.sa_policies.setdefault(sa_email, Policy()).grant(role, member)

    def created(self) -> list[Job]:
        return list(self.jobs.values())

    def can_act_as(self, principal: str, sa_email: str, project: Any) -> bool:
        if iam.has_project_permission(project, principal, "iam.serviceAccounts.actAs"):
            return True
        policy = self.sa_policies.get(sa_email)
        return bool(policy) and any(
            principal in members and iam.role_grants(role, "iam.serviceAccounts.actAs")
            for role, members in policy.bindings.items())  # type: ignore[union-attr]

    def stop(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel_requested = True
        for thread in self._threads:
            thread.join(timeout=20)

    # the job's life ------------------------------------------------------------------------
    def start(self, job: Job) -> None:
        thread = threading.Thread(target=self._run, args=(job,), daemon=True,
                                  name=f"fake-vertex-{job.name.rsplit('/', 1)[-1]}")
        self._threads.append(thread)
        thread.start()

    def _set(self, job: Job, state: str, **changes: Any) -> None:
        with self.fake.world.lock:
            job.state = state
            for key, value in changes.items():
                setattr(job, key, value)

    def _run(self, job: Job) -> None:
        try:
            self._lifecycle(job)
        except Exception as exc:  # the fake's own failure: a failed job, never a dead thread
            self._set(job, "JOB_STATE_FAILED", end_time=now_rfc3339(),
                      error={"code": 13, "message": f"Internal error in the fake: {exc}"})

    def _lifecycle(self, job: Job) -> None:
        time.sleep(self.queue_seconds)
        if job.cancel_requested:
            self._set(job, "JOB_STATE_CANCELLED", end_time=now_rfc3339())
            return
        self._set(job, "JOB_STATE_PENDING")
        if job.fault == "fail":
            time.sleep(self.queue_seconds)
            self._set(job, "JOB_STATE_FAILED", end_time=now_rfc3339(), error={
                "code": 13, "message": "Internal error occurred for the current attempt."})
            return
        import docker

        client = docker.from_env(timeout=120)
        try:
            attempts = 2 if job.fault == "preempt" else 1
            for attempt in range(attempts):
                code = self._attempt(client, job, preempt=attempt == 0 and attempts == 2)
                if code is None:
                    return  # cancelled
                if attempt + 1 < attempts:
                    continue
                if code == 0:
                    self._set(job, "JOB_STATE_SUCCEEDED", end_time=now_rfc3339())
                else:
                    self._set(job, "JOB_STATE_FAILED", end_time=now_rfc3339(), error={
                        "code": 3,
                        "message": f"The replica workerpool0-0 exited with a non-zero status of "
                                   f"{code}. To find out more about why your job exited please "
                                   "check the logs."})
        finally:
            client.close()

    def _attempt(self, client: Any, job: Job, *, preempt: bool) -> int | None:
        spec = job.body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
        command = list(spec.get("command", [])) + list(spec.get("args", []))
        if job.fault == "hang":
            command = ["sleep", "3600"]
        env = {e["name"]: e.get("value", "") for e in spec.get("env", [])}
        env.update(self.fake.env)
        env.update(self.container_env)
        env["CLOUD_ML_JOB_ID"] = job.name.rsplit("/", 1)[-1]
        volumes: dict[str, dict[str, str]] = {}
        account = job.body["jobSpec"].get("serviceAccount")
        if account:
            key = self.fake.add_member(account, project=job.project)
            env["GOOGLE_APPLICATION_CREDENTIALS"] = KEY_IN_CONTAINER
            volumes[str(key)] = {"bind": KEY_IN_CONTAINER, "mode": "ro"}
        container = client.containers.run(spec["imageUri"], command or None, detach=True,
                                          network_mode="host", environment=env, volumes=volumes,
                                          labels={"dev.zenml-collab.fake-vertex": job.name})
        with self.fake.world.lock:
            job.container_ids.append(container.id)
        if job.start_time is None:
            self._set(job, "JOB_STATE_RUNNING", start_time=now_rfc3339())
        try:
            if preempt:
                time.sleep(0.5)
                container.kill()
            while True:
                if job.cancel_requested:
                    container.kill()
                    container.wait(timeout=30)
                    self._set(job, "JOB_STATE_CANCELLED", end_time=now_rfc3339(), error={
                        "code": 1, "message": "CANCELED"})
                    return None
                try:
                    result = container.wait(timeout=0.2)
                    break
                except Exception:  # requests' ReadTimeout: still running
                    continue
            job.logs += container.logs().decode("utf-8", "replace")
            return int(result.get("StatusCode", 1))
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def state_of(fake: FakeGCP) -> VertexState:
    with fake.world.lock:
        if fake._vertex is None:
            fake._vertex = VertexState(fake)
        state: VertexState = fake._vertex
        return state


def _location(fake: FakeGCP, call: Call) -> tuple[Any, str, str]:
    project = fake.world.find_project(call.params["projectsId"])
    location = call.params["locationsId"]
    resource = f"projects/{call.params['projectsId']}/locations/{location}"
    if project is None:
        raise _denied("aiplatform.customJobs.list", resource)
    return project, location, resource


def _denied(permission: str, resource: str) -> errors.GoogleError:
    return errors.error(
        403, f"Permission '{permission}' denied on resource "
             f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).",
        status="PERMISSION_DENIED", details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
            "domain": "aiplatform.googleapis.com",
            "metadata": {"permission": permission, "resource": resource}}])


def _require(call: Call, project: Any, permission: str, resource: str) -> None:
    if not iam.has_project_permission(project, call.principal, permission):
        raise _denied(permission, resource)


def create_job(fake: FakeGCP, call: Call) -> Reply:
    project, location, resource = _location(fake, call)
    _require(call, project, "aiplatform.customJobs.create", resource)
    body = dict(call.body or {})
    pools = body.get("jobSpec", {}).get("workerPoolSpecs") or []
    if not body.get("displayName") or not pools or not pools[0].get("containerSpec", {}).get(
            "imageUri"):
        raise errors.error(400, "List of found errors:\t1.Field: job_spec.worker_pool_specs[0]."
                                "container_spec.image_uri; Message: Required field is not set.",
                           status="INVALID_ARGUMENT")
    vertex = state_of(fake)
    account = body["jobSpec"].get("serviceAccount")
    if account and not vertex.can_act_as(call.principal, account, project):
        raise errors.error(
            403, f"You do not have permission to act as service_account: {account}. (or it may "
                 "not exist).", status="PERMISSION_DENIED")
    job_id = str(next(vertex._ids))
    job = Job(f"projects/{project.number}/locations/{location}/customJobs/{job_id}",
              project.project_id, location, body)
    job.fault = vertex.faults.pop(0) if vertex.faults else None
    vertex.jobs[job.name] = job
    vertex.start(job)
    return Reply(body=job.to_json())


def _job(fake: FakeGCP, call: Call, permission: str) -> Job:
    project, location, resource = _location(fake, call)
    _require(call, project, permission, resource)
    name = f"projects/{project.number}/locations/{location}/customJobs/{call.params['customJobsId']}"
    job = state_of(fake).jobs.get(name)
    if job is None:
        raise errors.error(404, f"The CustomJob does not exist: {name}", status="NOT_FOUND")
    return job


def get_job(fake: FakeGCP, call: Call) -> Reply:
    return Reply(body=_job(fake, call, "aiplatform.customJobs.get").to_json())


def list_jobs(fake: FakeGCP, call: Call) -> Reply:
    project, location, resource = _location(fake, call)
    _require(call, project, "aiplatform.customJobs.list", resource)
    jobs = [j.to_json() for j in state_of(fake).jobs.values()
            if j.project == project.project_id and j.location == location]
    return Reply(body={"customJobs": jobs} if jobs else {})


def cancel_job(fake: FakeGCP, call: Call) -> Reply:
    job = _job(fake, call, "aiplatform.customJobs.cancel")
    if job.state not in TERMINAL:
        job.cancel_requested = True
        job.state = "JOB_STATE_CANCELLING"
    return Reply(body={})


def _sa(call: Call) -> str:
    return call.params["serviceAccountsId"]


def sa_test_permissions(fake: FakeGCP, call: Call) -> Reply:
    vertex = state_of(fake)
    sa = _sa(call)
    project = fake.world.find_project(sa.partition("@")[2].partition(".")[0])
    asked = (call.body or {}).get("permissions", [])
    held = [p for p in asked if p == "iam.serviceAccounts.actAs"
            and vertex.can_act_as(call.principal, sa, project)]
    return Reply(body={"permissions": held} if held else {})


def sa_get_policy(fake: FakeGCP, call: Call) -> Reply:
    policy = state_of(fake).sa_policies.get(_sa(call), Policy())
    return Reply(body={"version": 1, "etag": policy.etag, "bindings": policy.to_json()})


def sa_set_policy(fake: FakeGCP, call: Call) -> Reply:
    policy = state_of(fake).sa_policies.setdefault(_sa(call), Policy())
    wanted = (call.body or {}).get("policy", {})
    if wanted.get("etag") and wanted["etag"] != policy.etag:
        raise errors.etag_conflict()
    iam.check_roles_known(wanted.get("bindings", []))
    fake.iam_propagation.check(wanted.get("bindings", []), policy.bindings)
    policy.replace(wanted.get("bindings", []))
    return Reply(body={"version": 1, "etag": policy.etag, "bindings": policy.to_json()})


HANDLERS = {
    "aiplatform.projects.locations.customJobs.create": create_job,
    "aiplatform.projects.locations.customJobs.get": get_job,
    "aiplatform.projects.locations.customJobs.list": list_jobs,
    "aiplatform.projects.locations.customJobs.cancel": cancel_job,
    "iam.projects.serviceAccounts.testIamPermissions": sa_test_permissions,
    "iam.projects.serviceAccounts.getIamPolicy": sa_get_policy,
    "iam.projects.serviceAccounts.setIamPolicy": sa_set_policy,
}
