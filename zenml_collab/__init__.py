"""zenml-collab: one reproducible, cached pipeline history for a whole ML team.

The public API is listed in ``__all__`` (a test pins it). Names are imported lazily so that
``import zenml_collab`` stays fast and pulls in no heavy library.

>>> from zenml_collab import Pipeline, step
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BaseStep": "zenml_collab.core.step",
    "step": "zenml_collab.core.step",
    "Step": "zenml_collab.core.step",
    "Pipeline": "zenml_collab.core.pipeline",
    "Run": "zenml_collab.core.run",
    "StepResult": "zenml_collab.core.run",
    "Repository": "zenml_collab.core.repository",
    "TrainingPipeline": "zenml_collab.core.training.pipeline",
    "CSVDatasource": "zenml_collab.core.training.steps",
    "RandomSplit": "zenml_collab.core.training.steps",
    "StandardPreprocesser": "zenml_collab.core.training.steps",
    "SklearnTrainer": "zenml_collab.core.training.steps",
    "Evaluator": "zenml_collab.core.training.steps",
    "CollabError": "zenml_collab.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from zenml_collab.core.pipeline import Pipeline
    from zenml_collab.core.repository import Repository
    from zenml_collab.core.run import Run, StepResult
    from zenml_collab.core.step import BaseStep, Step, step
    from zenml_collab.core.training.pipeline import TrainingPipeline
    from zenml_collab.core.training.steps import (
        CSVDatasource,
        Evaluator,
        RandomSplit,
        SklearnTrainer,
        StandardPreprocesser,
    )
    from zenml_collab.errors import CollabError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zenml_collab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
