"""The miss reason names the most significant change first; duplicate step names are named."""

from __future__ import annotations

from typing import Any

import pytest

from zenml_collab.core.cache import explain_miss
from zenml_collab.core.metadata.records import StepRunRecord
from zenml_collab.errors import PipelineError


def _previous(params: dict[str, Any]) -> Any:
    fields = {name: None for name in StepRunRecord.__dataclass_fields__}
    fields.update(step_path="steps:trainer", code_hash="c", params=params, inputs={})
    return StepRunRecord(**fields)


def test_a_changed_model_class_is_named_before_its_hyper_parameters() -> None:
    before = {"model": "LogisticRegression", "max_iter": 1000, "train_split": "train"}
    after = {"model": "RandomForestClassifier", "max_depth": 8, "n_estimators": 200,
             "min_samples_leaf": 2, "train_split": "train"}
    reason = explain_miss(_previous(before), step_path="steps:trainer", code_hash="c",
                          params=after, input_hashes={})
    assert reason.startswith("params changed: model 'LogisticRegression' -> "
                             "'RandomForestClassifier'"), reason
    assert "(+3 more)" in reason


def test_without_a_model_change_the_changed_params_are_listed_by_name() -> None:
    reason = explain_miss(_previous({"a": 1, "b": 2}), step_path="steps:trainer",
                          code_hash="c", params={"a": 2, "b": 3}, input_hashes={})
    assert reason == "params changed: a 1 -> 2, b 2 -> 3"


def test_duplicate_step_names_in_a_config_are_reported_as_duplicates_not_a_cycle() -> None:
    from zenml_collab.core.pipeline import Pipeline
    from zenml_collab.core.pipeline_config import PipelineConfig

    config = PipelineConfig.model_validate({"name": "dup", "steps": [
        {"name": "a", "step": "collab_test_steps:source"},
        {"name": "a", "step": "collab_test_steps:scale", "inputs": {"xs": "a"}},
    ]})
    with pytest.raises(PipelineError) as raised:
        Pipeline.from_config(config)
    assert "more than one step named 'a'" in raised.value.message
    assert "cycle" not in raised.value.message
