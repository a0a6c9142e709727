"""render_*: readable rich tables for a terminal."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from zenml_collab.core.analysis import (
    compute_statistics,
    detect_anomalies,
    evaluate,
    infer_schema,
    render_anomalies,
    render_evaluation,
    render_schema,
    render_statistics,
    render_value,
)


def text_of(renderable: Any) -> str:
    console = Console(width=160, record=True, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


@pytest.fixture(scope="module")
def split_values(clean_split: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    train, evaluation = clean_split
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": evaluation}, schema=schema)
    return {"schema": schema, "stats": stats, "eval": evaluation}


def test_schema_table_shows_each_feature_type_and_domain(split_values: dict[str, Any]) -> None:
    text = text_of(render_schema(split_values["schema"]))
    assert "Schema (10 features, from 614 rows)" in text
    assert "clinic" in text and "categorical" in text and "{campus, harbor, north, south}" in text
    assert "[0, 17]" in text  # pregnancies range


def test_statistics_tables_show_every_split(split_values: dict[str, Any]) -> None:
    text = text_of(render_statistics(split_values["stats"]))
    assert "Statistics of split 'train' (614 rows)" in text
    assert "Statistics of split 'eval' (154 rows)" in text
    assert "median" in text and "north (" in text


def test_clean_data_renders_no_anomalies_found(split_values: dict[str, Any]) -> None:
    values = split_values
    found = detect_anomalies(values["schema"], values["stats"], values["eval"])
    text = text_of(render_anomalies(found))
    assert "No anomalies found in split 'eval' against 'train'." in text
    assert "Drift per feature" in text and "jensen-shannon" in text


def test_anomalies_render_with_counts_by_severity(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.copy()
    broken.loc[0, "clinic"] = "mars"
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": broken}, schema=schema)

    text = text_of(render_anomalies(detect_anomalies(schema, stats, broken)))

    assert "1 error, 0 warnings" in text
    assert "out_of_domain" in text and "'mars'" in text


def test_evaluation_table_has_overall_then_slices(predictions: Any) -> None:
    result = evaluate(
        predictions.y_true,
        predictions.y_pred,
        slices=predictions.eval_frame,
        slice_columns=["clinic"],
    )
    lines = text_of(render_evaluation(result)).splitlines()
    labels = [line.split()[1] for line in lines if line.startswith("│")]
    assert labels[0] == "overall"
    assert labels[1:] == [f"clinic={c}" for c in sorted(predictions.eval_frame["clinic"].unique())]


def test_render_dispatches_on_the_value_type(split_values: dict[str, Any]) -> None:
    assert text_of(render_value(split_values["schema"])) == text_of(
        render_schema(split_values["schema"])
    )
    with pytest.raises(TypeError):
        render_value(object())  # type: ignore[arg-type]
