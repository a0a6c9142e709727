"""The cases of the golden snapshot of the analysis values (schema, statistics, anomalies,
evaluation) and their terminal renderings.

``golden_views.json`` was generated from the per-value implementation *before* the analysis was
vectorised (issue 16), with ``python -m tests.analysis.golden_cases``; the test in
``test_golden_views.py`` checks that today's code gives the same numbers (to printed
precision), the same anomalies and the same printed tables. Regenerate it only when a change of
output is intended, and say so in the commit.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).with_name("golden_views.json")


def _guide_splits() -> dict[str, pd.DataFrame]:
    """The guide's data set split as the guide's pipeline splits it."""
    from zenml_collab.core.training.steps import SPLIT_COLUMN, RandomSplit
    from zenml_collab.data import load_diabetes

    data = RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42).run(load_diabetes())
    if isinstance(data, dict):  # since issue 16 the split step also returns the data views
        data = data["output"]
    return {str(k): g.drop(columns=[SPLIT_COLUMN])
            for k, g in data.groupby(SPLIT_COLUMN, sort=False)}


def _messy_splits() -> dict[str, pd.DataFrame]:
    """Every column kind type inference distinguishes, and an eval split with every anomaly."""
    rng = np.random.default_rng(11)
    n = 400
    ints = rng.integers(0, 90, n).astype(float)
    ints[rng.choice(n, 7, replace=False)] = np.nan
    train = pd.DataFrame({
        "int_nan": ints,
        "real": rng.normal(50, 10, n),
        "flag": rng.random(n) < 0.3,
        "flag_obj": pd.Series([True, False, None, True] * (n // 4), dtype=object),
        "flag_text": pd.Series(["true", "False", "TRUE", "false"] * (n // 4), dtype=object),
        "num_text": pd.Series([str(v) for v in rng.integers(1, 9, n)], dtype=object),
        "cat": pd.Series(rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]),
                         dtype=object),
        "pdcat": pd.Categorical(rng.choice(["x", "y"], n)),
        "ident": [f"user-{i}" for i in range(n)],
        "when": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        "mixed": pd.Series([1, "two", 3.5, None] * (n // 4), dtype=object),
        "small": rng.integers(0, 4, n),
        "const": np.full(n, 7.0),
        "gone": rng.integers(0, 5, n),
    })
    evaluation = train.sample(120, random_state=3).reset_index(drop=True).drop(columns=["gone"])
    evaluation["real"] = evaluation["real"] + 25  # drift and out of range
    evaluation = evaluation.astype({"int_nan": object, "small": float})
    evaluation.loc[[0, 5], "int_nan"] = ["n/a", "12.5x"]
    evaluation.loc[1, "int_nan"] = 2.5
    evaluation.loc[[2, 3, 4], "cat"] = ["zzz", "yyy", "zzz"]
    evaluation.loc[[6, 7], "small"] = [np.nan, np.inf]
    evaluation.loc[8, "real"] = 1e6
    evaluation.loc[[9, 10], "flag_text"] = ["maybe", None]
    evaluation["extra"] = 1
    return {"train": train, "eval": evaluation}


def _render(value: Any) -> str:
    from rich.console import Console

    from zenml_collab.core.analysis.render import render_value

    buffer = io.StringIO()
    Console(file=buffer, width=220, color_system=None, force_terminal=False).print(
        render_value(value))
    return buffer.getvalue()


def data_views(splits: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Schema, statistics and anomalies computed the way the pipeline's views compute them."""
    from zenml_collab.core.analysis import compute_statistics, detect_anomalies, infer_schema

    schema = infer_schema(splits["train"])
    stats = compute_statistics(splits, schema=schema)
    anomalies = detect_anomalies(schema, stats, splits["eval"], split="eval", baseline="train")
    return {
        "schema": schema.to_dict(), "statistics": stats.to_dict(), "anomalies": anomalies.to_dict(),
        "printed": {"schema": _render(schema), "statistics": _render(stats),
                    "anomalies": _render(anomalies)},
    }


def evaluations() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from zenml_collab.core.analysis import evaluate
    from zenml_collab.data import load_diabetes

    frame = load_diabetes()
    features = [c for c in frame.columns if c not in ("has_diabetes", "clinic")]
    train, test = frame.iloc[:500], frame.iloc[500:].reset_index(drop=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[features], train["has_diabetes"])
    y, pred, score = test["has_diabetes"], model.predict(test[features]), \
        model.predict_proba(test[features])[:, 1]
    slices = test.assign(age_band=(test["age"] // 20) * 20,
                         sparse=np.where(np.arange(len(test)) % 5 == 0, None, test["clinic"]))
    out: dict[str, Any] = {}
    binary = evaluate(y, pred, score, metrics=["accuracy", "precision", "recall", "f1", "roc_auc",
                                               "log_loss"],
                      slices=slices, slice_columns=["clinic", "age_band", "sparse"])
    out["binary"] = binary
    multi_model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[features], train["clinic"])
    out["multiclass"] = evaluate(test["clinic"], multi_model.predict(test[features]),
                                 multi_model.predict_proba(test[features]),
                                 metrics=["accuracy", "f1", "roc_auc", "log_loss"],
                                 slices=slices, slice_columns=["has_diabetes"])
    reg = Ridge().fit(train[features[:-1]], train["glucose"])
    out["regression"] = evaluate(test["glucose"], reg.predict(test[features[:-1]]),
                                 task="regression", slices=slices,
                                 slice_columns=["clinic", "sparse"])
    return {name: {"value": value.to_dict(), "printed": _render(value)}
            for name, value in out.items()}


def compute_all() -> dict[str, Any]:
    return {"guide": data_views(_guide_splits()), "messy": data_views(_messy_splits()),
            "evaluation": evaluations()}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(compute_all(), indent=1, sort_keys=True, allow_nan=False) + "\n",
                      encoding="utf-8")
    print(f"wrote {GOLDEN}")
