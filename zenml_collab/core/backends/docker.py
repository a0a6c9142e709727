"""The ``docker`` backend: each executed step runs in a container on the member's dockerd.

Host networking, so the container reaches exactly what the member reaches (a proxy on
127.0.0.1, the team's stores); the member's credentials file is mounted read-only; local
stores (SQLite, a folder) are mounted at their own paths. Containers are labelled and removed
when done, and killed on Ctrl-C.

The store settings can hold a database password, so they never go into the container's
environment or arguments (``docker inspect`` shows both): each step writes them to a mode-0600
file in a private temporary directory, mounts it read-only and removes it when the container ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from zenml_collab.core.backends.task import StepTask
from zenml_collab.errors import ConfigError, ConnectivityError, StepFailedError

log = logging.getLogger("zenml_collab.backends")
LABEL = "dev.zenml-collab.step"
CREDENTIALS_IN_CONTAINER = "/var/run/collab/credentials.json"
STORES_IN_CONTAINER = "/var/run/collab/stores.json"
STORES_FILE_ENV = "COLLAB_WORKER_STORES_FILE"
# Endpoint overrides a member may have set (tests, private endpoints): the container needs them.
PASSED_ENV = ("COLLAB_SQLADMIN_ENDPOINT", "STORAGE_EMULATOR_HOST", "NO_GCE_CHECK",
              "COLLAB_GCS_RETRY_TIMEOUT", "COLLAB_DEBUG")


def worker_command(task: StepTask) -> list[str]:
    return ["python3", "-m", "zenml_collab.worker", "--task", task.to_arg()]


def last_error(output: str) -> str:
    """The worker's ``error:`` line (else the output's last line): what the member sees."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def image_digest_of(image: Any) -> str:
    """A docker SDK image's registry digest (``repo@sha256:…``) when pushed, else its id."""
    digests = image.attrs.get("RepoDigests") or []
    return str(digests[0] if digests else image.id)


def local_image_digest(name: str) -> str | None:
    """The digest of image ``name`` on this machine's dockerd; None when docker or the image
    is not here (a team image only in the registry)."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        try:
            return image_digest_of(client.images.get(name))
        finally:
            client.close()
    except Exception as exc:  # no docker, no image: the reference is recorded as given
        log.debug("no local digest for %s: %s", name, exc)
        return None


class DockerBackend:
    name = "docker"

    def __init__(self, image: str, stores: dict[str, Any], *, mounts: dict[str, str] | None = None,
                 credentials_file: str | None = None, client: Any = None) -> None:
        self.image = image
        self._stores = stores
        self._mounts = dict(mounts or {})
        self._credentials = credentials_file
        self._client = client
        self._running: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._digest: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=120)
                self._client.ping()
            except Exception as exc:
                raise ConnectivityError(f"cannot reach the docker daemon: {exc}",
                                        "start docker, or run the step on another backend "
                                        "(compute.backend / backend=...)") from None
        return self._client

    def prepare(self) -> None:
        self.image_digest()

    def image_digest(self) -> str | None:
        if self._digest is None:
            import docker

            try:
                image = self.client.images.get(self.image)
            except docker.errors.ImageNotFound:
                raise ConfigError(f"docker image {self.image!r} is not on this machine",
                                  "build it with `collab image build` (or pull it)") from None
            self._digest = image_digest_of(image)
        return self._digest

    def _environment(self) -> dict[str, str]:
        env = {STORES_FILE_ENV: STORES_IN_CONTAINER, "PYTHONUNBUFFERED": "1"}
        env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
        if self._credentials:
            env["GOOGLE_APPLICATION_CREDENTIALS"] = CREDENTIALS_IN_CONTAINER
        return env

    def _write_stores(self) -> Path:
        """The store settings in a fresh private directory (0700), the file itself 0600."""
        private = Path(tempfile.mkdtemp(prefix="collab-stores-"))
        path = private / "stores.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._stores, out)
        return path

    def _volumes(self, stores_file: Path) -> dict[str, dict[str, str]]:
        volumes = {path: {"bind": path, "mode": "rw"} for path in self._mounts}
        volumes[str(stores_file)] = {"bind": STORES_IN_CONTAINER, "mode": "ro"}
        if self._credentials:
            volumes[str(Path(self._credentials).resolve())] = {
                "bind": CREDENTIALS_IN_CONTAINER, "mode": "ro"}
        return volumes

    def execute(self, task: StepTask) -> None:
        stores_file = self._write_stores()
        try:
            container = self.client.containers.run(
                self.image, worker_command(task), detach=True, network_mode="host",
                environment=self._environment(), volumes=self._volumes(stores_file),
                labels={LABEL: f"{task.run_id}/{task.step_name}"})
            with self._lock:
                self._running[container.id] = container
            try:
                status = container.wait()
                output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            finally:
                with self._lock:
                    self._running.pop(container.id, None)
                try:
                    container.remove(force=True)
                except Exception as exc:  # already gone (killed by cancel_all)
                    log.debug("container %s: %s", container.id[:12], exc)
        finally:
            shutil.rmtree(stores_file.parent, ignore_errors=True)
        code = status.get("StatusCode", 1)
        if code != 0:
            raise StepFailedError(
                f"step {task.step_name!r} of pipeline {task.pipeline_name!r} failed in docker "
                f"container {container.id[:12]} (exit {code}): {last_error(output)}",
                "fix the step and run the pipeline again; the steps that succeeded are cached")

    def cancel_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for container in running:
            try:
                container.kill()
            except Exception as exc:
                log.debug("kill %s: %s", container.id[:12], exc)
