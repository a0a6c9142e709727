"""A step's code hash is computed when a run first needs it, not at import (a view never needs
it); a steps file edited in between must not record the new source's hash for the old code."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from zenml_collab import Pipeline, Repository
from zenml_collab.errors import PipelineError
from zenml_collab.testing.repos import TmpRepo

FUNCTION = "from zenml_collab import step\n\n@step\ndef make() -> int:\n    return {value}\n"
CLASS = ("from zenml_collab import BaseStep\n\nclass Make(BaseStep):\n"
         "    def run(self) -> int:\n        return {value}\n")


def _import(root: Path, name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    (root / f"{name}.py").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


@pytest.mark.parametrize(("source", "attr"), [(FUNCTION, "make"), (CLASS, "Make")],
                         ids=["function", "class"])
def test_a_steps_file_edited_after_import_is_refused_not_recorded_under_the_new_hash(
        tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch, source: str, attr: str) -> None:
    name = f"edited_{attr.lower()}_steps"
    module = _import(tmp_repo.root, name, source.format(value=1), monkeypatch)
    pipeline = Pipeline("edited")
    pipeline.add(getattr(module, attr), name="make")
    # Edited in the editor, not re-imported (a notebook): the loaded code still returns 1.
    (tmp_repo.root / f"{name}.py").write_text(source.format(value=2), encoding="utf-8")
    with Repository() as repo:
        with pytest.raises(PipelineError, match=r"changed after step .* was imported") as err:
            pipeline.run(repo)
        assert "importlib.reload" in (err.value.hint or "")
        assert repo.metadata.list_runs("edited") == []  # nothing recorded

        reloaded = importlib.reload(module)  # what the hint says: the new code, its own hash
        fresh = Pipeline("edited")
        fresh.add(getattr(reloaded, attr), name="make")
        run = fresh.run(repo)
        assert run.load("make") == 2


def test_an_unchanged_steps_file_hashes_as_before(tmp_repo: TmpRepo,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    module = _import(tmp_repo.root, "stable_steps", FUNCTION.format(value=3), monkeypatch)
    runs = []
    with Repository() as repo:
        for _ in range(2):
            pipeline = Pipeline("stable")
            pipeline.add(module.make, name="make")
            runs.append(pipeline.run(repo))
    first, again = runs
    assert first["make"].status == "executed" and again["make"].status == "cached"
    assert first["make"].code_hash == again["make"].code_hash
