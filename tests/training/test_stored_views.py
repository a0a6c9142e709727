"""The data views are artifacts of the run: a teammate reads them from the shared stores without
the split data, a re-run serves them from the cache, and a run without them derives them once."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

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
from zenml_collab.config import ArtifactsConfig, MetadataConfig, TeamConfig, write_team_config
from zenml_collab.core.artifacts.base import ArtifactRef
from zenml_collab.core.step import BaseStep
from zenml_collab.core.training.views import VIEW_OUTPUTS, derived_key
from zenml_collab.testing.repos import make_git_repo

DATA = resources.files("zenml_collab.data") / "diabetes.csv"


class CountingStore:
    """A real artifact store that counts the artifacts read through it (``local_dir``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[str] = []

    def local_dir(self, ref: ArtifactRef) -> Path:
        self.reads.append(ref.hash)
        return self.inner.local_dir(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PlainSplit(BaseStep):
    """A split step that stores only its data, as RandomSplit did before issue 16."""

    def __init__(self, seed: int = 1) -> None:
        super().__init__(seed=seed)

    def run(self, data: Any) -> Any:
        out = data.copy()
        out["__split__"] = ["eval" if i % 4 == 0 else "train" for i in range(len(out))]
        return out


def member(root: Path, store: Path, name: str) -> Path:
    """A clone of the team repo: its own checkout, the team's shared stores."""
    from zenml_collab.actions.init import init_repo

    make_git_repo(root, name)
    write_team_config(root, TeamConfig(
        metadata=MetadataConfig(kind="sqlite", path=str(store / "metadata.db")),
        artifacts=ArtifactsConfig(uri=str(store / "artifacts"))))
    (root / "data").mkdir()
    shutil.copyfile(str(DATA), root / "data" / "diabetes.csv")
    init_repo(root)
    return root


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("COLLAB_NO_BROWSER", "1")
    store = tmp_path / "store"
    store.mkdir()
    return {"alice": member(tmp_path / "alice", store, "alice"),
            "bob": member(tmp_path / "bob", store, "bob")}


def build(name: str, split: BaseStep | None = None) -> TrainingPipeline:
    p = TrainingPipeline(name=name)
    p.add_datasource(CSVDatasource(name="diabetes", path="data/diabetes.csv"))
    p.add_split(split or RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42))
    p.add_preprocesser(StandardPreprocesser(features=["glucose", "bmi", "age", "clinic"],
                                            labels=["has_diabetes"]))
    p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=500))
    p.add_evaluator(Evaluator(metrics=["accuracy", "f1"], slices=[["clinic"]]))
    return p


def viewer(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[Any, CountingStore]:
    """``name`` as a member in ``root`` sees it, every artifact read counted."""
    monkeypatch.chdir(root)
    repo = Repository(root)
    counting = CountingStore(repo.artifacts)
    repo._artifacts = counting  # type: ignore[assignment]  # the store the views read through
    return repo.get_pipeline_by_name(name), counting


def all_views(pipeline: Any) -> dict[str, Any]:
    return {"schema": pipeline.view_schema(show=False),
            "statistics": pipeline.view_statistics(show=False),
            "anomalies": pipeline.view_anomalies(show=False)}


def test_member_b_reads_member_a_views_without_reading_the_split_data(team, monkeypatch):
    monkeypatch.chdir(team["alice"])
    run = build("Pipeline A").run(Repository(team["alice"]))
    split = run["split"].outputs
    assert set(VIEW_OUTPUTS) <= set(split)

    pipeline, counting = viewer(team["bob"], monkeypatch, "Pipeline A")
    views = all_views(pipeline)

    assert sorted(counting.reads) == sorted(split[n].hash for n in VIEW_OUTPUTS)
    assert split["output"].hash not in counting.reads
    assert run["datasource"].outputs["output"].hash not in counting.reads
    assert views["schema"]["clinic"].type == "categorical"
    assert {s.name for s in views["statistics"]} == {"train", "eval"}
    assert views["anomalies"].ok and views["anomalies"].split == "eval"


def test_statistics_artifacts_are_cache_hits_on_a_rerun(team, monkeypatch):
    monkeypatch.chdir(team["alice"])
    first = build("Pipeline A").run(Repository(team["alice"]))
    monkeypatch.chdir(team["bob"])
    again = build("Pipeline A").run(Repository(team["bob"]))

    assert again["split"].status == "cached"
    for name in ("output", *VIEW_OUTPUTS):
        assert again["split"].outputs[name] == first["split"].outputs[name]


def test_a_run_without_stored_views_derives_them_once_for_the_whole_team(team, monkeypatch):
    monkeypatch.chdir(team["alice"])
    run = build("Plain", split=PlainSplit()).run(Repository(team["alice"]))
    data = run["split"].outputs["output"]
    assert set(run["split"].outputs) == {"output"}

    first, first_reads = viewer(team["alice"], monkeypatch, "Plain")
    derived = all_views(first)
    assert data.hash in first_reads.reads  # computed once from the split data...
    repo = Repository(team["alice"])
    assert repo.metadata.cached_outputs(derived_key(data.hash, "train")) is not None

    second, second_reads = viewer(team["bob"], monkeypatch, "Plain")
    again = all_views(second)
    assert data.hash not in second_reads.reads  # ...and read back by the teammate
    assert len(second_reads.reads) == len(VIEW_OUTPUTS)
    assert again == derived
    assert derived["statistics"]["eval"].num_rows == 192


def test_derived_views_equal_the_views_the_split_step_stores(team, monkeypatch):
    """The first-view path and the in-run path compute the same values from the same data."""
    from zenml_collab.core.analysis.views import compute_data_views

    monkeypatch.chdir(team["alice"])
    run = build("Pipeline A").run(Repository(team["alice"]))
    frame = run.load("split")
    views = compute_data_views(frame, split_column="__split__", baseline="train")
    assert run.load("split", "statistics") == views.statistics_dict()
    assert run.load("split", "anomalies") == views.anomalies_dict()


@pytest.mark.parametrize(("row", "fields"), [("1,2", 2), ("1,2,3,4", 4)])
def test_a_csv_with_a_ragged_row_is_refused_naming_the_file_and_line(tmp_path, row, fields):
    from zenml_collab.core.training.steps import check_ragged_rows
    from zenml_collab.errors import ConfigError

    raw = f"a,b,c\n1,2,3\n\"x,\ny\",5,6\n{row}\n7,8,9\n".encode()
    with pytest.raises(ConfigError) as info:
        check_ragged_rows(raw, "data/bad.csv", {})
    assert info.value.message.startswith("data/bad.csv: line 5 has ")
    assert f"has {fields} field(s), the header has 3" in info.value.message
    check_ragged_rows(b"a,b,c\n1,2,3\n,,\n", "data/ok.csv", {})  # empty values are fine


def test_a_pipeline_on_a_ragged_csv_fails_with_the_line(team, monkeypatch):
    from zenml_collab.errors import CollabError

    monkeypatch.chdir(team["alice"])
    csv = team["alice"] / "data" / "diabetes.csv"
    lines = csv.read_text().splitlines()
    lines[10] = lines[10].rsplit(",", 1)[0]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(CollabError, match="line 11 has 9 field"):
        build("Ragged").run(Repository(team["alice"]))


def test_loading_the_split_of_a_recorded_run_gives_its_data_not_a_view(team, monkeypatch):
    monkeypatch.chdir(team["alice"])
    build("Pipeline A").run(Repository(team["alice"]))
    recorded = Repository(team["alice"]).latest_run("Pipeline A")
    assert "__split__" in recorded.load("split").columns
    assert recorded.load("split", "statistics")["baseline"] == "train"
