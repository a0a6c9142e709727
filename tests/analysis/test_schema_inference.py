"""infer_schema: types, nullability, presence and domains."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.analysis import MAX_CATEGORIES, AnalysisError, Schema, infer_schema


def test_shipped_dataset_types_and_domains(diabetes: pd.DataFrame) -> None:
    schema = infer_schema(diabetes)

    assert schema.names == tuple(diabetes.columns)
    assert schema.num_rows == len(diabetes)
    types = {f.name: f.type for f in schema}
    assert types == {
        "pregnancies": "int",
        "glucose": "int",
        "blood_pressure": "int",
        "skin_thickness": "int",
        "insulin": "int",
        "bmi": "float",
        "diabetes_pedigree": "float",
        "age": "int",
        "clinic": "categorical",
        "has_diabetes": "int",
    }
    assert schema["clinic"].categories == tuple(sorted(diabetes["clinic"].unique()))
    for name in ("glucose", "bmi", "age"):
        assert schema[name].value_range == (diabetes[name].min(), diabetes[name].max())
        assert schema[name].categories is None
    assert all(not f.nullable and f.presence == 1.0 for f in schema)


def test_missing_values_make_a_feature_nullable_and_set_its_presence() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan], "c": ["a", None, "b", "a"]})
    schema = infer_schema(frame)

    assert schema["x"].nullable and schema["x"].presence == 0.5
    assert schema["x"].value_range == (1.0, 3.0)
    assert schema["c"].nullable and schema["c"].presence == 0.75
    assert schema["c"].categories == ("a", "b")


def test_text_with_more_distinct_values_than_the_limit_is_string_without_domain() -> None:
    many = pd.DataFrame({"id": [f"user-{i}" for i in range(MAX_CATEGORIES + 1)]})
    few = pd.DataFrame({"id": [f"user-{i % MAX_CATEGORIES}" for i in range(200)]})

    assert infer_schema(many)["id"].type == "string"
    assert infer_schema(many)["id"].categories is None
    assert infer_schema(few)["id"].type == "categorical"
    assert len(infer_schema(few)["id"].categories or ()) == MAX_CATEGORIES


def test_object_columns_are_typed_by_their_values() -> None:
    frame = pd.DataFrame(
        {
            "flag": pd.Series([True, False, None], dtype=object),
            "whole": pd.Series([1, 2, None], dtype=object),
            "real": pd.Series([1.5, 2, None], dtype=object),
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
            "mixed": pd.Series([1, "two", 3], dtype=object),
        }
    )
    schema = infer_schema(frame)

    assert [schema[n].type for n in frame.columns] == [
        "bool",
        "int",
        "float",
        "datetime",
        "categorical",
    ]


def test_schema_survives_a_json_round_trip(diabetes: pd.DataFrame) -> None:
    schema = infer_schema(diabetes)
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_schema_is_immutable(diabetes: pd.DataFrame) -> None:
    schema = infer_schema(diabetes)
    with pytest.raises(AttributeError):
        schema.num_rows = 1  # type: ignore[misc]


def test_asking_for_an_unknown_feature_names_the_known_ones(diabetes: pd.DataFrame) -> None:
    with pytest.raises(AnalysisError) as info:
        infer_schema(diabetes)["glucos"]
    assert "glucos" in info.value.message
    assert "glucose" in (info.value.hint or "")
