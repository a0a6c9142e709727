"""Build the launcher for a repository: which backend each step uses, the stores a worker
opens, and the backends themselves (imported only when a step needs them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.config import ComputeConfig, MetadataConfig, Settings, merge_compute
from zenml_collab.errors import ConfigError

if TYPE_CHECKING:
    from zenml_collab.core.backends.base import Backend
    from zenml_collab.core.backends.task import StepTask
    from zenml_collab.core.pipeline import Pipeline, StepNode
    from zenml_collab.core.repository import Repository
    from zenml_collab.core.run import Run, StepResult
    from zenml_collab.core.runner import RunContext

IMAGE_ENV = "COLLAB_STEP_IMAGE"


def compute_settings(settings: Settings) -> ComputeConfig:
    return merge_compute(settings.team.compute, settings.local.compute)


def backend_of(node: StepNode, compute: ComputeConfig) -> str:
    """The step's own choice, else the member's (local.yaml), else the team's default."""
    return node.backend or compute.backend


def needs_launcher(pipeline: Pipeline, settings: Settings) -> bool:
    compute = compute_settings(settings)
    return any(backend_of(n, compute) != "local" for n in pipeline.steps)


def metadata_for_worker(cfg: MetadataConfig, root: Path) -> tuple[dict[str, Any], list[str]]:
    """The metadata settings a container opens (secret included: it stays on this machine)
    and the host paths it needs mounted (a SQLite file's directory)."""
    data = cfg.model_dump(mode="json", exclude_none=True)
    if cfg.password is not None:
        data["password"] = cfg.password.get_secret_value()
    mounts: list[str] = []
    if cfg.kind == "sqlite":
        path = Path(cfg.path or ".collab/metadata.db")
        path = path if path.is_absolute() else root / path
        data["path"] = str(path.resolve())
        mounts.append(str(path.resolve().parent))
    return data, mounts


def artifacts_for_worker(uri: str, root: Path) -> tuple[str, list[str]]:
    if uri.startswith("gs://"):
        return uri, []
    path = Path(uri).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    return str(path), [str(path)]


def step_image(compute: ComputeConfig, backend: str) -> str:
    own = compute.docker.image if backend == "docker" else compute.vertex.image
    image = os.environ.get(IMAGE_ENV) or own or compute.image
    if not image:
        raise ConfigError(f"no image for the {backend} backend",
                          "build one with `collab image build` (it records compute.image), or "
                          f"set compute.{backend}.image in collab.yaml")
    return image


def make_backend(name: str, settings: Settings,
                 failure_reason: Callable[[StepTask], str | None] | None = None) -> Backend:
    compute = compute_settings(settings)
    root = settings.root
    metadata, meta_mounts = metadata_for_worker(settings.metadata, root)
    artifacts, art_mounts = artifacts_for_worker(settings.artifacts.uri, root)
    if name == "docker":
        from zenml_collab.core.backends.docker import DockerBackend

        return DockerBackend(step_image(compute, "docker"),
                             {"metadata": metadata, "artifacts": artifacts},
                             mounts={p: p for p in meta_mounts + art_mounts},
                             credentials_file=settings.local.credentials_file
                             or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"))
    if name == "vertex":
        from zenml_collab.core.backends.vertex import vertex_backend

        return vertex_backend(settings, compute, step_image(compute, "vertex"), artifacts,
                              failure_reason)
    raise ConfigError(f"unknown backend {name!r}", "use local, docker or vertex")


def launch(repo: Repository, pipeline: Pipeline, *, pipeline_id: int, context: RunContext,
           on_step: Any = None, resume_hint: str = "", start: Any = None) -> Run:
    """Run ``pipeline`` with each step on its backend (see :mod:`.launcher`)."""
    from zenml_collab.core.backends.launcher import Launcher
    from zenml_collab.core.backends.source import pack_source

    settings = repo.settings
    compute = compute_settings(settings)
    callback: Any = on_step

    def failure_reason(task: StepTask) -> str | None:
        """What the worker recorded when its step failed (the container's own message)."""
        for record in repo.metadata.step_runs(task.run_id):
            if record.step_name == task.step_name and record.status == "failed":
                return record.reason.removeprefix("failed: ")
        return None

    def on(result: StepResult) -> None:
        if callback is not None:
            callback(result)

    launcher = Launcher(
        pipeline, pipeline_id=pipeline_id, metadata=repo.metadata, artifacts=repo.artifacts,
        context=context, backend_of=lambda node: backend_of(node, compute),
        make_backend=lambda name: make_backend(name, settings, failure_reason),
        pack_source=lambda: pack_source(repo.root, repo.artifacts).to_json(),
        max_parallel=compute.max_parallel, on_step=on, resume_hint=resume_hint, start=start)
    return launcher.run()
