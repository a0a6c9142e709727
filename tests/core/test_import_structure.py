"""A pipeline does not need the repository: core.pipeline and core.training import without
core.repository, and no import chain (type-only ones included) leads from them to it.

``Pipeline.run()`` without a repository and ``Pipeline.from_config`` of a training pipeline
resolve through :mod:`zenml_collab.core.registry` instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PIPELINE_SIDE = ("zenml_collab.core.pipeline", "zenml_collab.core.training.pipeline",
                 "zenml_collab.core.training.steps", "zenml_collab.core.training.sources",
                 "zenml_collab.core.training.views", "zenml_collab.core.runner")


def test_pipelines_are_built_and_rebuilt_without_importing_the_repository() -> None:
    code = (
        "import sys\n"
        "from zenml_collab.core.pipeline import Pipeline\n"
        "from zenml_collab.core.pipeline_config import PipelineConfig\n"
        "from zenml_collab.core.training.pipeline import TrainingPipeline\n"
        "p = Pipeline.from_config(PipelineConfig(name='t', kind='training', steps=[]))\n"
        "assert type(p) is TrainingPipeline, type(p)\n"
        "TrainingPipeline('x')\n"
        "print(sorted(m for m in sys.modules if m.startswith('zenml_collab.core.repository')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_import_chain_leads_from_pipelines_to_the_repository() -> None:
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("zenml_collab")  # TYPE_CHECKING imports count too
    for module in PIPELINE_SIDE:
        chain = graph.find_shortest_chain(importer=module,
                                          imported="zenml_collab.core.repository")
        assert chain is None, chain


def test_a_registered_default_host_runs_a_pipeline_given_no_repository(
    tmp_repo: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import collab_test_steps as steps

    from zenml_collab.core.registry import set_default_host
    from zenml_collab.core.repository import Repository

    repo = Repository(tmp_repo.root)
    monkeypatch.chdir(tmp_repo.root.parent)  # not a repository: Repository() would fail here
    set_default_host(lambda: repo)
    try:
        run = steps.diamond().run()
    finally:
        set_default_host(None)
    assert run.status == "completed"
    assert [r.id for r in repo.get_pipeline_runs(run.pipeline_name)] == [run.id]
