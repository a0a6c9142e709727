"""A member's view of the team's work: the repo, its pipeline configs and the shared stores.

>>> repo = Repository()                                   # doctest: +SKIP
>>> pipeline_a = repo.get_pipeline_by_name("Pipeline A")  # doctest: +SKIP
>>> pipeline_b = pipeline_a.copy(new_name="Pipeline B")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.config import LOCAL_DIR, Settings, load_settings
from zenml_collab.core.pipeline_config import (
    PIPELINES_DIR,
    CreatedInfo,
    PipelineConfig,
    config_path,
    dump_pipeline_config,
    load_pipeline_config,
)
from zenml_collab.core.root import find_root
from zenml_collab.errors import PipelineError, PipelineNotFoundError

if TYPE_CHECKING:
    from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore
    from zenml_collab.core.metadata.lite import MetadataReader
    from zenml_collab.core.metadata.lite_store import LiteStore
    from zenml_collab.core.metadata.records import RunRecord
    from zenml_collab.core.metadata.runpath import RunStore
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.core.pipeline import Pipeline
    from zenml_collab.core.run import Run, StepResult

log = logging.getLogger("zenml_collab")


class DirtyTreeWarning(UserWarning):
    """The run used code with uncommitted changes: its git SHA does not pin it."""


class Repository:
    """Entry point to pipelines, runs and stores of the repo containing ``path`` (default CWD)."""

    def __init__(self, path: str | Path | None = None, *, settings: Settings | None = None) -> None:
        self.root = settings.root if settings else find_root(Path(path) if path else None)
        self._settings = settings
        self._metadata: MetadataStore | None = None
        self._lite: LiteStore | None = None  # see lite_store.py; None until opened
        self._artifacts: ArtifactStore | None = None

    @classmethod
    def get_instance(cls, path: str | Path | None = None) -> Repository:
        """ZenML-style spelling of ``Repository()``."""
        return cls(path)

    # -- stores -----------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.root)
        return self._settings

    @property
    def metadata(self) -> MetadataStore:
        if self._metadata is None:
            from zenml_collab.core.stores import open_metadata_store

            store = open_metadata_store(self.settings.metadata, self.root,
                                        credentials_file=self.settings.local.credentials_file)
            store.check_schema(expected_store_id=self.settings.metadata.store_id)
            store.outbox_dir = self.root / LOCAL_DIR / "outbox"
            store.deliver_deferred()
            self._metadata = store
            self._close_reader()  # the full store answers the reads from now on
        return self._metadata

    @property
    def reader(self) -> MetadataReader:
        """The store's reads (pipelines, runs, steps, cache entries) for the views.

        On a current embedded store, through ``sqlite3`` alone: a view in a fresh process then
        imports no SQLAlchemy and opens the store with one statement. Any other store, or any
        doubt about this one, gets the full store (which initialises, migrates or explains).
        """
        return self._lite_or_full()

    def _run_store(self) -> RunStore:
        """The store a run writes through: on a current embedded store ``sqlite3`` alone (a
        cached `collab run` imports no SQLAlchemy), the full store otherwise."""
        return self._lite_or_full()

    def _lite_or_full(self) -> LiteStore | MetadataStore:
        if self._metadata is not None:
            return self._metadata
        if self._lite is None:
            from zenml_collab.core.stores import open_lite_metadata

            self._lite = open_lite_metadata(self.settings.metadata, self.root)
        return self._lite or self.metadata

    def _close_reader(self) -> None:
        lite, self._lite = self._lite, None
        if lite is not None:
            lite.close()

    def close(self) -> None:
        """Close the metadata store's connections now (a long-lived process, a test)."""
        self._close_reader()
        metadata, self._metadata = self._metadata, None
        if metadata is not None:
            metadata.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            from zenml_collab.core.stores import open_artifact_store

            self._artifacts = open_artifact_store(
                self.settings.artifacts.uri, self.root,
                credentials_file=self.settings.local.credentials_file)
        return self._artifacts

    @property
    def pipelines_dir(self) -> Path:
        return self.root / PIPELINES_DIR

    # -- running ----------------------------------------------------------------------------
    def run_pipeline(self, pipeline: Pipeline,
                     on_step: Callable[[StepResult], None] | None = None) -> Run:
        """Register (once), record the config file, run, and freeze ``pipeline``."""
        from zenml_collab.core.environment import capture_environment
        from zenml_collab.core.git import git_info
        from zenml_collab.core.runner import RunContext, prepare_run, run_pipeline

        self._importable()
        git = git_info(self.root)
        from zenml_collab.core.training.sources import check_sources_tracked

        git = check_sources_tracked(pipeline, self.root, git)  # untracked data: warn, dirty
        if git.dirty:
            sha = git.sha[:10] if git.sha else "?"
            warnings.warn(
                f"running {pipeline.name!r} with uncommitted changes: git SHA {sha} "
                "does not pin this code (step code hashes are still recorded); commit first to "
                "make the run reproducible by your team", DirtyTreeWarning, stacklevel=3)
        config = pipeline.to_config()
        if config.created is None:
            config = config.model_copy(update={"created": CreatedInfo(
                by=git.user, at=datetime.now(UTC).isoformat(timespec="seconds"),
                git_sha=git.sha, git_dirty=git.dirty)})
        context = RunContext(git=git, hostname=socket.gethostname(),
                             environment=capture_environment())
        path = config_path(self.root, pipeline.name).relative_to(self.root)
        from zenml_collab.core.backends.wiring import launch, needs_launcher

        launched = needs_launcher(pipeline, self.settings)  # a step runs on docker or vertex
        store = self.metadata if launched else self._run_store()
        store.check_limits(pipeline.name, [(n.name, n.impl.import_path, n.params)
                                           for n in pipeline.steps])
        with store.run_session():
            self._check_config_slot(pipeline.name)
            identity = config.identity()
            # One statement when the pipeline is registered (DESIGN §12).
            pipeline_id, start = prepare_run(store, pipeline_name=pipeline.name,
                                             identity=identity, environment=context.environment,
                                             register=lambda: store.register_pipeline(
                                                 name=pipeline.name, kind=config.kind,
                                                 identity=identity,
                                                 config_json=config.model_dump_json(),
                                                 created_by=git.user, git_sha=git.sha))
            self._write_config(config)
            if launched:
                run = launch(self, pipeline, pipeline_id=pipeline_id, context=context,
                             on_step=on_step, resume_hint=f"collab run {path}", start=start)
            else:
                run = run_pipeline(pipeline, pipeline_id=pipeline_id, metadata=store,
                                   artifacts=self.artifacts, context=context, on_step=on_step,
                                   resume_hint=f"collab run {path}", start=start)
        pipeline.freeze("it has run; pipelines are immutable once run")
        return run

    def _check_config_slot(self, name: str) -> None:
        """Two names with the same file name (``Pipeline A`` / ``pipeline-a``) would overwrite
        each other's committed config: refuse the newcomer before anything is recorded."""
        path = config_path(self.root, name)
        if path.exists():
            existing = load_pipeline_config(path)
            if existing.name != name:
                raise PipelineError(
                    f"pipeline name {name!r} would be stored in {path.relative_to(self.root)}, "
                    f"which holds pipeline {existing.name!r}",
                    "choose a name that differs in more than case, spaces or punctuation")

    def _write_config(self, config: PipelineConfig) -> None:
        path = config_path(self.root, config.name)
        if path.exists():
            existing = load_pipeline_config(path)
            if existing.identity() == config.identity():
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(dump_pipeline_config(config), encoding="utf-8")
        os.replace(tmp, path)

    def _importable(self) -> None:
        # Steps are found by import path relative to the repo root, as when running a script there.
        root = str(self.root)
        if root not in sys.path:
            sys.path.insert(0, root)

    # -- reading ----------------------------------------------------------------------------
    def load_pipeline_config(self, name_or_path: str | Path) -> PipelineConfig:
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml"):
            return load_pipeline_config(path if path.is_absolute() else Path.cwd() / path)
        if isinstance(name_or_path, Path) or path.is_file():
            raise PipelineError(f"{str(name_or_path)!r} is not a pipeline config",
                                "pass a pipelines/*.yaml file or a pipeline name")
        file = config_path(self.root, str(name_or_path))
        if file.exists():
            found = load_pipeline_config(file)
            if found.name == str(name_or_path):
                return found
        record = self.reader.get_pipeline(str(name_or_path))
        if record is None:
            known = ", ".join(repr(p.name) for p, _, _ in self.metadata.list_pipelines()) or "none"
            raise PipelineNotFoundError(f"no pipeline named {name_or_path!r}",
                                        f"known pipelines: {known} (`collab pipelines list`)")
        return PipelineConfig.model_validate_json(record.config_json)

    def pipeline_from_config(self, name_or_path: str | Path) -> Pipeline:
        """Rebuild a pipeline (editable) from its config file or its recorded definition."""
        from zenml_collab.core.pipeline import Pipeline

        self._importable()
        return Pipeline.from_config(self.load_pipeline_config(name_or_path))

    def get_pipeline_by_name(self, name: str) -> Any:
        """The pipeline ``name``, immutable, with its latest successful run attached.

        A :class:`Pipeline`, or a :class:`TrainingPipeline` (with ``view_*``, ``evaluate``,
        ``add_*`` on copies) when it was recorded as one: typed ``Any`` so that the guide's
        code, which does not know which it gets, type-checks as it reads.
        """
        from zenml_collab.core.pipeline import Pipeline

        self._importable()
        pipeline = Pipeline.from_config(self.load_pipeline_config(name))
        pipeline.freeze("it is a recorded pipeline")
        pipeline._repository = self  # type: ignore[attr-defined]
        return pipeline

    def get_pipelines(self) -> list[Pipeline]:
        names = {p.name for p, _, _ in self.metadata.list_pipelines()}
        if self.pipelines_dir.is_dir():
            names |= {load_pipeline_config(f).name for f in sorted(self.pipelines_dir.glob("*.yaml"))}
        return [self.get_pipeline_by_name(n) for n in sorted(names)]

    def get_pipeline_runs(self, name: str) -> list[Run]:
        return [self._run_from_record(r) for r in self.metadata.list_runs(name)]

    def latest_run(self, name: str) -> Run:
        record = self.reader.latest_run(name)
        if record is None:
            raise PipelineNotFoundError(f"pipeline {name!r} has no successful run yet",
                                        "run it first: pipeline.run()")
        return self._run_from_record(record)

    def get_run(self, run_id: str) -> Run:
        record = self.metadata.get_run(run_id)
        if record is None:
            raise PipelineNotFoundError(f"no single run matches {run_id!r}",
                                        "use more characters of the id from `collab runs list`")
        return self._run_from_record(record)

    def _run_from_record(self, record: RunRecord) -> Run:
        from zenml_collab.core.artifacts.base import ArtifactRef, load_artifact
        from zenml_collab.core.run import Run, StepResult

        steps = tuple(
            StepResult(s.step_name, s.status, s.reason, s.cache_key, s.code_hash,
                       {k: ArtifactRef.from_json(
                           v, origin=f"step {s.step_name!r} of run {record.id[:8]} "
                                     f"(recorded by {record.user or 'an unknown member'})")
                        for k, v in (s.outputs or {}).items()},
                       s.duration_ms, s.execution)
            for s in self.reader.step_runs(record.id))

        def reader(ref: ArtifactRef, allow_pickle: bool = False) -> Any:
            return load_artifact(self.artifacts, ref, allow_pickle=allow_pickle)

        return Run(id=record.id, pipeline_name=record.pipeline_name, status=record.status,
                   steps=steps, started_at=record.started_at, git_sha=record.git_sha,
                   git_dirty=record.git_dirty, user=record.user, _reader=reader)

    def load_artifact(self, ref: ArtifactRef, *, allow_pickle: bool = False) -> Any:
        from zenml_collab.core.artifacts.base import load_artifact

        return load_artifact(self.artifacts, ref, allow_pickle=allow_pickle)

    def describe(self) -> dict[str, Any]:
        from zenml_collab.core.stores import describe_metadata

        return {"root": str(self.root),
                "metadata": describe_metadata(self.settings.metadata, self.root),
                "artifacts": self.settings.artifacts.uri}
