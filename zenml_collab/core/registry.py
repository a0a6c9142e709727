"""Where a pipeline runs when its caller names no repository, and which class a pipeline kind
is: resolved here, by import path, on first use.

:mod:`zenml_collab.core.pipeline` is below :mod:`zenml_collab.core.repository` (the repository
imports pipelines, runs them and rebuilds them from ``pipelines/*.yaml``) and below
:mod:`zenml_collab.core.training`. ``Pipeline.run()`` without a repository and
``Pipeline.from_config`` of a training pipeline ask this module instead of importing either,
so a pipeline never needs the repository to exist (a test pins the import graph).

>>> from zenml_collab.core.registry import pipeline_class
>>> pipeline_class("training").__name__
'TrainingPipeline'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from zenml_collab.core.artifacts.base import ArtifactStore
    from zenml_collab.core.metadata.lite import MetadataReader
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.core.pipeline import Pipeline
    from zenml_collab.core.run import Run

#: What ``Pipeline.run()`` uses when given no repository: ``Repository()`` of the CWD.
DEFAULT_HOST = "zenml_collab.core.repository:Repository"
#: Pipeline classes by ``kind`` in ``pipelines/*.yaml`` (``custom`` is the base class).
PIPELINE_KINDS = {"training": "zenml_collab.core.training.pipeline:TrainingPipeline"}


class PipelineHost(Protocol):
    """What a pipeline needs of the repository it runs in (``Repository`` is one)."""

    root: Path

    @property
    def metadata(self) -> MetadataStore: ...

    @property
    def reader(self) -> MetadataReader: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    def run_pipeline(self, pipeline: Pipeline) -> Run: ...

    def latest_run(self, name: str) -> Run: ...


_host_factory: Callable[[], PipelineHost] | None = None


def _resolve(path: str) -> object:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def default_host() -> PipelineHost:
    """The repository a pipeline runs in when none is given (``Repository()`` by default)."""
    factory = _host_factory or _resolve(DEFAULT_HOST)
    assert callable(factory)
    host: PipelineHost = factory()
    return host


def set_default_host(factory: Callable[[], PipelineHost] | None) -> None:
    """Make ``factory`` the source of :func:`default_host` (``None``: back to ``Repository``)."""
    global _host_factory
    _host_factory = factory


def pipeline_class(kind: str) -> type[Pipeline] | None:
    """The class of pipelines of ``kind``; ``None`` for the base class (``custom``)."""
    path = PIPELINE_KINDS.get(kind)
    if path is None:
        return None
    klass = _resolve(path)
    assert isinstance(klass, type)
    return klass
