"""Data snapshots keyed by content, the TrainingPipeline builder, and the views."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from zenml_collab import (
    CSVDatasource,
    Evaluator,
    RandomSplit,
    Repository,
    SklearnTrainer,
    StandardPreprocesser,
    TrainingPipeline,
)
from zenml_collab.errors import CollabError, ConfigError, ImmutablePipelineError, PipelineError

FEATURES = ["glucose", "bmi", "age", "clinic"]


@pytest.fixture
def data_repo(tmp_repo):
    (tmp_repo.root / "data").mkdir()
    shutil.copyfile(str(resources.files("zenml_collab.data") / "diabetes.csv"),
                    tmp_repo.root / "data" / "diabetes.csv")
    return tmp_repo


def build(name: str, *, model: str = "LogisticRegression", path: str = "data/diabetes.csv",
          **trainer: object) -> TrainingPipeline:
    p = TrainingPipeline(name=name)
    p.add_datasource(CSVDatasource(name="diabetes", path=path))
    p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=3))
    p.add_preprocesser(StandardPreprocesser(features=FEATURES, labels=["has_diabetes"]))
    p.add_trainer(SklearnTrainer(model=model, **({"max_iter": 500} | trainer)
                                 if model == "LogisticRegression" else trainer))
    p.add_evaluator(Evaluator(metrics=["accuracy", "f1"], slices=[["clinic"]]))
    return p


def test_the_datasource_writes_an_immutable_arrow_snapshot_reused_by_later_pipelines(data_repo):
    first = build("one").run()
    ref = first["datasource"].outputs["output"]
    assert ref.materializer == "pandas" and ref.files == ("data.arrow",)
    snapshot = Path(Repository().artifacts.location(ref)) / "data.arrow"
    pd.testing.assert_frame_equal(pd.read_feather(snapshot),
                                  pd.read_csv(data_repo.root / "data" / "diabetes.csv"))
    second = build("two", model="DecisionTreeClassifier", max_depth=3).run()
    assert second["datasource"].status == "cached"
    assert second["datasource"].outputs["output"] == ref


def test_a_changed_source_file_makes_a_new_snapshot_and_reruns_downstream(data_repo):
    first = build("one").run()
    csv = data_repo.root / "data" / "diabetes.csv"
    frame = pd.read_csv(csv)
    frame.loc[0, "glucose"] = 199
    frame.to_csv(csv, index=False)
    second = build("one").run()
    assert set(second.statuses.values()) == {"executed"}
    assert second["datasource"].reason == "input changed: <source>"
    assert second["datasource"].outputs["output"].hash != first["datasource"].outputs["output"].hash
    # The old snapshot is still there, unchanged: snapshots are immutable.
    assert Repository().artifacts.exists(first["datasource"].outputs["output"])


def test_views_return_values_and_print_tables(data_repo, capsys):
    build("viewed").run()
    pipeline = Repository().get_pipeline_by_name("viewed")
    schema = pipeline.view_schema()
    assert schema["clinic"].type == "categorical"
    stats = pipeline.view_statistics()
    assert {s.name for s in stats.splits} == {"train", "eval"}
    anomalies = pipeline.view_anomalies()
    assert anomalies.ok
    evaluation = pipeline.evaluate()
    assert {s.value for s in evaluation.slices} == {"campus", "harbor", "north", "south"}
    printed = capsys.readouterr().out
    assert "glucose" in printed and "accuracy" in printed


def test_views_write_self_contained_html_reports(data_repo, tmp_path):
    build("reported").run()
    pipeline = Repository().get_pipeline_by_name("reported")
    for view in ("view_schema", "view_statistics", "view_anomalies", "evaluate"):
        target = tmp_path / f"{view}.html"
        getattr(pipeline, view)(html=target, show=False)
        html = target.read_text()
        assert "<html" in html.lower() and "http://" not in html and "https://" not in html
    assert (tmp_path / "view_statistics.html").read_text().count("data:image/png;base64") >= 4


def test_add_steps_out_of_order_or_of_the_wrong_kind_is_refused(data_repo):
    p = TrainingPipeline(name="bad")
    with pytest.raises(PipelineError, match="needs datasource first"):
        p.add_split(RandomSplit(split_map={"train": 0.5, "eval": 0.5}))
    with pytest.raises(PipelineError, match="expects a configured step"):
        p.add_datasource("data/diabetes.csv")  # type: ignore[arg-type]


def test_copy_replaces_the_trainer_and_keeps_the_original_immutable(data_repo):
    build("orig").run()
    original = Repository().get_pipeline_by_name("orig")
    with pytest.raises(ImmutablePipelineError, match="copy"):
        original.add_trainer(SklearnTrainer(model="GaussianNB"))
    copy = original.copy(new_name="copy")
    copy.add_trainer(SklearnTrainer(model="GaussianNB"))
    run = copy.run()
    assert [run[s].status for s in ("datasource", "split", "preprocesser")] == ["cached"] * 3
    assert run["trainer"].status == run["evaluator"].status == "executed"
    assert original.step("trainer").params["model"] == "LogisticRegression"


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: RandomSplit(split_map={"train": 0.7, "eval": 0.2}), ConfigError, "sum to 0.9"),
    (lambda: RandomSplit(split_map={}), ConfigError, "invalid split_map"),
    (lambda: StandardPreprocesser(features=[], labels=["y"]), ConfigError, "needs features"),
    (lambda: Evaluator(slices=[3]), ConfigError, "invalid slices"),
])
def test_bad_step_configuration_is_refused_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(("change", "message"), [
    (dict(path="data/missing.csv"), "does not exist"),
    (dict(model="NoSuchModel"), "unknown scikit-learn estimator"),
    (dict(model="LogisticRegression", bogus=1), "unexpected keyword argument 'bogus'"),
])
def test_bad_pipeline_inputs_fail_the_run_with_a_clear_error(data_repo, change, message):
    with pytest.raises(CollabError, match=message):
        build("broken", **change).run()


def test_an_unknown_slice_column_names_the_available_ones(data_repo):
    p = build("slices")
    copy = p.copy(new_name="slices2")
    copy.add_evaluator(Evaluator(metrics=["accuracy"], slices=["hospital"]))
    with pytest.raises(CollabError, match="hospital"):
        copy.run()


@pytest.mark.gcs
def test_a_gcs_datasource_is_snapshotted_and_refreshed_when_the_object_changes(data_repo, gcs_bucket):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    blob = client.bucket(gcs_bucket).blob("raw/diabetes.csv")
    csv = (data_repo.root / "data" / "diabetes.csv").read_bytes()
    blob.upload_from_string(csv)
    uri = f"gs://{gcs_bucket}/raw/diabetes.csv"
    first = build("remote", path=uri).run()
    assert first["datasource"].status == "executed"
    assert build("remote", path=uri).run()["datasource"].status == "cached"
    blob.upload_from_string(csv.replace(b"\n1,", b"\n2,", 1))
    changed = build("remote", path=uri).run()
    assert changed["datasource"].reason == "input changed: <source>"
    assert changed["datasource"].outputs["output"].hash != first["datasource"].outputs["output"].hash


def test_get_pipelines_lists_every_recorded_pipeline_immutable(data_repo):
    build("first").run()
    build("second", model="GaussianNB").run()
    pipelines = Repository().get_pipelines()
    assert [p.name for p in pipelines] == ["first", "second"]
    assert all(p.is_frozen for p in pipelines)
    assert [r.status for r in Repository().get_pipeline_runs("second")] == ["completed"]


def test_a_relative_datasource_path_is_read_from_the_repository_root(data_repo, monkeypatch):
    build("rooted").run()
    sub = data_repo.root / "pipelines"
    (sub / "data").mkdir()
    (sub / "data" / "diabetes.csv").write_text("decoy,file\n1,2\n")  # must not be read
    monkeypatch.chdir(sub)
    again = build("rooted").run(Repository())
    assert again["datasource"].status == "cached"


def test_html_views_draw_their_plots_once_per_stored_artifact(data_repo, tmp_path):
    pipeline = build("plots")
    pipeline.run()
    first = pipeline.view_statistics(html=tmp_path / "one.html", show=False)
    cached = sorted((data_repo.root / ".collab" / "plots").glob("*/*.png"))
    assert len(cached) == len(first.feature_names)
    stamps = {path: path.stat().st_mtime_ns for path in cached}
    # A fresh pipeline object (as in another process) reads the plots back: none is redrawn.
    Repository().get_pipeline_by_name("plots").view_statistics(html=tmp_path / "two.html",
                                                               show=False)
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps
    assert sorted((data_repo.root / ".collab" / "plots").glob("*/*.png")) == cached
    assert (tmp_path / "two.html").read_text() == (tmp_path / "one.html").read_text()


def test_an_evaluator_slicing_by_a_missing_column_names_the_columns_there_are(data_repo):
    pipeline = build("sliced")
    pipeline.add_evaluator(Evaluator(metrics=["accuracy"], slices=["clinic", "nope"]))
    with pytest.raises(CollabError) as info:
        pipeline.run()
    assert "slice column not found: nope" in info.value.message
    assert "glucose" in info.value.hint and "clinic" in info.value.hint
