"""The "data" section (issue 16): data views at scale, on a table the benchmark generates.

A 1,000,000 x 6 CSV (3 float features, an int, a 4-value category, a 0/1 label; ~34 MB) is
written once per size. Measured, each cold run in a fresh workspace and a fresh process:

* ``data_pipeline_cold``: the whole TrainingPipeline (snapshot, split + data views,
  preprocess, logistic regression, evaluation sliced by the category);
* ``data_plain_script``: a plain pandas + scikit-learn script doing the same work (read_csv,
  split, standardise + one-hot, fit, metrics overall and per slice), for the time and
  peak-memory ratios;
* ``data_views_compute``: what the data views add to the run (``compute_data_views`` on the
  split frame, in-process);
* ``data_view_<view>``: ``view_schema()`` / ``view_statistics()`` / ``view_anomalies()`` of the
  stored run, each in a fresh process; the figure is the call itself (printed by the child),
  the whole process time is kept beside it.

``--tiny`` uses 20,000 rows; ``COLLAB_BENCH_DATA_ROWS`` overrides (10,000,000 for the full row).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from benchmarks.context import Context
from benchmarks.harness import Figure, measure, measure_process
from benchmarks.workspace import Workspace

_PIPELINE = """
import sys, time
from zenml_collab import (CSVDatasource, Evaluator, RandomSplit, SklearnTrainer,
                          StandardPreprocesser, TrainingPipeline)
p = TrainingPipeline(name="data")
p.add_datasource(CSVDatasource(name="table", path="data/table.csv"))
p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42))
p.add_preprocesser(StandardPreprocesser(features=["x1", "x2", "x3", "age", "clinic"],
                                        labels=["label"]))
p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=200))
p.add_evaluator(Evaluator(metrics=["accuracy", "f1"], slices=[["clinic"]]))
run = p.run()
assert set(run.statuses.values()) == {"executed"}, run.statuses
"""

_PLAIN = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
frame = pd.read_csv("data/table.csv")
frame.to_parquet("snapshot.parquet")
order = np.random.default_rng(42).permutation(len(frame))
cut = round(0.7 * len(frame))
train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
num = ["x1", "x2", "x3", "age"]
mean, std = train[num].mean(), train[num].std(ddof=0)
def features(part):
    out = (part[num] - mean) / std
    for value in sorted(train["clinic"].unique()):
        out[f"clinic={value}"] = (part["clinic"] == value).astype(float)
    return out.to_numpy()
model = LogisticRegression(max_iter=200).fit(features(train), train["label"])
pred = model.predict(features(test))
y = test["label"].to_numpy()
scores = {"accuracy": accuracy_score(y, pred), "f1": f1_score(y, pred)}
for value, rows in test.groupby("clinic").indices.items():
    scores[value] = (accuracy_score(y[rows], pred[rows]), f1_score(y[rows], pred[rows]))
"""

_VIEW = """
import sys, time
t0 = time.perf_counter()
from zenml_collab import Repository
pipeline = Repository().get_pipeline_by_name("data")
getattr(pipeline, sys.argv[1])(show=True)
print(f"VIEW_SECONDS {time.perf_counter() - t0:.6f}")
"""


def make_table(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(16)
    clinic = rng.choice(np.array(["north", "south", "harbor", "campus"]), rows)
    x1, x2, x3 = rng.normal(0, 1, rows), rng.normal(5, 2, rows), rng.exponential(1.0, rows)
    age = rng.integers(18, 90, rows)
    logit = 0.8 * x1 - 0.3 * (x2 - 5) + 0.5 * x3 + 0.02 * (age - 50) + (clinic == "north")
    label = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    pd.DataFrame({"x1": x1.round(4), "x2": x2.round(4), "x3": x3.round(4), "age": age,
                  "clinic": clinic, "label": label}).to_csv(path, index=False)


def _rows(ctx: Context) -> int:
    override = os.environ.get("COLLAB_BENCH_DATA_ROWS")
    if override:
        return int(override)
    return 20_000 if ctx.preset == "tiny" else 1_000_000


def run(ctx: Context) -> list[Figure]:
    rows = _rows(ctx)
    repeat = 1 if ctx.preset == "tiny" else 3 if ctx.preset == "quick" else 5
    table = ctx.workdir / f"table-{rows}.csv"
    if not table.exists():
        ctx.say(f"data: generating {rows:,} x 6")
        make_table(table, rows)
    mb = table.stat().st_size / 2**20
    counter = iter(range(10_000))
    state: dict[str, Workspace] = {}

    def fresh() -> Workspace:
        ws = Workspace.create(ctx.repo_dir, f"data-{rows}-{next(counter)}")
        (ws.root / "data").mkdir()
        os.link(table, ws.root / "data" / "table.csv") if table.stat().st_dev == \
            ws.root.stat().st_dev else shutil.copyfile(table, ws.root / "data" / "table.csv")
        state["ws"] = ws
        return ws

    env = {**os.environ, "COLLAB_NO_BROWSER": "1", "PYTHONWARNINGS": "ignore"}
    label = f"{rows:,} x 6 ({mb:.0f} MB CSV)"
    figures = []
    cold_samples = []
    for _ in range(repeat):
        ws = pipeline_ws = fresh()
        cold_samples.append(measure_process(
            "data_pipeline_cold", "", [sys.executable, "-c", _PIPELINE], repeat=1,
            cwd=ws.root, env={**env, **ws.process_env()}, warmup=0))
    cold = Figure("data_pipeline_cold", f"TrainingPipeline cold, {label} (process)",
                  [s.samples[0] for s in cold_samples], [s.cpu[0] for s in cold_samples],
                  peak_rss_mb=max(s.peak_rss_mb or 0 for s in cold_samples))
    plain_ws = fresh()
    plain = measure_process("data_plain_script", f"plain pandas + scikit-learn, {label}",
                            [sys.executable, "-c", _PLAIN], repeat=repeat, cwd=plain_ws.root,
                            env=env, warmup=0)
    cold.extra["vs_plain_time"] = cold.median / plain.median
    cold.extra["vs_plain_memory"] = (cold.peak_rss_mb or 0) / (plain.peak_rss_mb or 1)
    cold.extra["rows"] = rows
    figures += [cold, plain]

    from zenml_collab.core.analysis.views import compute_data_views

    held = {"split": pipeline_ws.repository().latest_run("data").load("split")}
    # The table as pandas holds it (the snapshot: the CSV's columns, strings counted deeply),
    # the yardstick of the 10M row's "peak memory <= 3x the table". Without the index: read_csv
    # gives a RangeIndex (no memory), and the stored format decides whether one comes back
    # materialised (Parquet with index=True did: +8 bytes a row, 587 MB instead of 510 at 10M).
    columns = held["split"].drop(columns="__split__")
    table_mb = float(columns.memory_usage(deep=True, index=False).sum()) / 2**20
    del columns
    cold.extra["table_mb"] = table_mb
    cold.extra["vs_table_memory"] = (cold.peak_rss_mb or 0) / table_mb
    views = measure("data_views_compute", f"schema + statistics + anomalies of the splits, "
                    f"{label} (in-process, part of the split step)",
                    lambda: compute_data_views(held["split"], split_column="__split__"),
                    repeat=repeat)
    held.clear()
    figures.append(views)
    ws = pipeline_ws
    for view in ("view_schema", "view_statistics", "view_anomalies"):
        seconds: list[float] = []

        def check(sample, into=seconds) -> str | None:  # type: ignore[no-untyped-def]
            marks = [ln for ln in sample.stdout.splitlines() if ln.startswith("VIEW_SECONDS")]
            if not marks:
                return "no VIEW_SECONDS line"
            into.append(float(marks[-1].split()[1]))
            return None

        whole = measure_process(f"data_{view}_process", "", [sys.executable, "-c", _VIEW, view],
                                repeat=repeat, cwd=ws.root, env={**env, **ws.process_env()},
                                warmup=1, check=check)
        timed = seconds[1:] if len(seconds) > repeat else seconds
        figures.append(Figure(f"data_{view}", f"{view}() in a fresh process (the call: imports,"
                              f" store, read, render), {label}", timed,
                              peak_rss_mb=whole.peak_rss_mb,
                              extra={"process_wall_median": whole.median}))
    return figures
