"""Caching as DESIGN §3 defines it: what hits, what misses, and why."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import collab_test_steps as steps
import pytest

from zenml_collab import Pipeline, Repository
from zenml_collab.core.repository import DirtyTreeWarning


def test_first_run_executes_every_step_with_reason_no_previous_run(tmp_repo, executions):
    run = steps.diamond().run()
    assert run.statuses == dict.fromkeys(["source", "scale", "shift", "combine"], "executed")
    assert {s.reason for s in run.steps} == {"no previous run"}
    assert sorted(executions.names()) == ["combine", "scale", "shift", "source"]
    assert run.load("combine") == {"total": sum(x * 2 for x in range(5)) + sum(range(1, 6))}


def test_cached_rerun_executes_no_step_body(tmp_repo, executions):
    steps.diamond().run()
    executions.reset()
    run = steps.diamond().run()
    assert executions.names() == []
    assert set(run.statuses.values()) == {"cached"}
    assert all(s.reason == "cache hit" for s in run.steps)
    assert run.load("combine")["total"] == 35


def test_changing_one_param_reexecutes_exactly_that_step_and_descendants(tmp_repo, executions):
    original = steps.diamond()
    original.run()
    executions.reset()
    changed = original.copy(new_name="diamond v2")
    changed.set_params("shift", offset=10)
    run = changed.run()
    assert run.statuses == {"source": "cached", "scale": "cached", "shift": "executed",
                            "combine": "executed"}
    assert sorted(executions.names()) == ["combine", "shift"]
    assert run["shift"].reason == "params changed: offset 1 -> 10"
    assert run["combine"].reason == "input changed: b"


def test_commit_elsewhere_in_the_repo_does_not_invalidate_the_cache(tmp_repo, executions):
    first_sha = tmp_repo.commit("first")
    steps.diamond().run()
    tmp_repo.gen({"README.md": "unrelated change\n"})
    second_sha = tmp_repo.commit("second")
    executions.reset()
    run = steps.diamond().run()
    assert executions.names() == []
    assert set(run.statuses.values()) == {"cached"}
    assert first_sha != second_sha
    assert run.git_sha == second_sha  # recorded, just not part of the key


def test_deleting_an_artifact_turns_a_hit_into_a_miss_with_reason_artifact_missing(
        tmp_repo, executions):
    run = steps.diamond().run()
    repo = Repository()
    location = Path(repo.artifacts.location(run["scale"].outputs["output"]))
    for file in location.iterdir():
        if not file.name.startswith("_"):
            file.unlink()
    executions.reset()
    again = steps.diamond().run()
    assert again["scale"].status == "executed"
    assert again["scale"].reason == "artifact missing"
    assert again["source"].status == again["shift"].status == "cached"
    # scale re-created the same content, so combine's input hash is unchanged: still a hit.
    assert again["combine"].status == "cached"
    assert executions.names() == ["scale"]
    assert steps.diamond().run()["scale"].status == "cached"


def test_editing_a_step_body_reexecutes_it_with_reason_code_changed(tmp_repo):
    tmp_repo.gen({"mysteps.py": "from zenml_collab import step\n\n@step\n"
                                "def make() -> int:\n    return 1\n"})
    script = ("from zenml_collab import Pipeline\nimport mysteps\np = Pipeline('edit')\n"
              "p.add(mysteps.make)\nprint(p.run()['make'].reason)\n")
    first = tmp_repo.python(script)
    assert first.stdout.strip() == "no previous run", first.stderr
    tmp_repo.gen({"mysteps.py": "from zenml_collab import step\n\n@step\n"
                                "def make() -> int:\n    # a comment is not a change\n"
                                "    return 1\n"})
    assert tmp_repo.python(script).stdout.strip() == "cache hit"
    tmp_repo.gen({"mysteps.py": "from zenml_collab import step\n\n@step\n"
                                "def make() -> int:\n    return 2\n"})
    assert tmp_repo.python(script).stdout.strip() == "code changed"


def test_a_step_that_raises_marks_the_run_failed_and_stores_nothing_for_it(tmp_repo, executions):
    from zenml_collab.errors import StepFailedError

    p = Pipeline("crashy")
    p.add(steps.source)
    p.add(steps.explode, inputs={"xs": "source"})
    with pytest.raises(StepFailedError, match="step 'explode' of pipeline 'crashy' failed"):
        p.run()
    repo = Repository()
    (failed,) = repo.get_pipeline_runs("crashy")
    assert failed.status == "failed"
    assert failed.statuses == {"source": "executed", "explode": "failed"}
    assert failed["explode"].outputs == {}
    assert repo.metadata.latest_run("crashy") is None  # no successful run
    store_root = Path(repo.artifacts.uri)
    artifact_dirs = [d for d in store_root.glob("??/*") if d.is_dir()]
    assert len(artifact_dirs) == 1  # only source's output
    assert not any((store_root / ".tmp").iterdir())


def test_a_process_killed_mid_step_leaves_no_artifact_and_no_successful_run(tmp_repo):
    tmp_repo.gen({"killer.py": (
        "import os\nfrom zenml_collab import step\n\n@step\n"
        "def half_written(n: int = 3) -> bytes:\n"
        "    os._exit(9)\n")})
    result = tmp_repo.python("from zenml_collab import Pipeline\nimport killer\n"
                             "p = Pipeline('killed')\np.add(killer.half_written)\np.run()\n")
    assert result.returncode == 9
    repo = Repository()
    runs = repo.get_pipeline_runs("killed")
    assert [r.status for r in runs] == ["abandoned"]  # its process is gone
    assert repo.metadata.latest_run("killed") is None
    assert not list(Path(repo.artifacts.uri).glob("??/*"))


def test_an_unstorable_output_fails_clearly_and_leaves_no_staging_files(tmp_repo):
    from zenml_collab.errors import MaterializerError

    p = Pipeline("unstorable")
    p.add(steps.source)
    p.add(steps.not_storable, inputs={"xs": "source"})
    with pytest.raises(MaterializerError, match="allow_pickle=True"):
        p.run()
    assert not any((Path(Repository().artifacts.uri) / ".tmp").iterdir())


def test_pickle_is_used_only_when_the_step_opts_in(tmp_repo):
    from zenml_collab.errors import MaterializerError

    p = Pipeline("pickles")
    p.add(steps.source)
    p.add(steps.pickled, inputs={"xs": "source"})
    run = p.run()
    assert run["pickled"].outputs["output"].materializer == "pickle"
    with pytest.raises(MaterializerError, match="would run code"):
        run.load("pickled")  # the reader opts in too
    assert run.load("pickled", allow_pickle=True) == {1, 2, 3}


def test_multiple_outputs_are_stored_and_wired_by_name(tmp_repo):
    p = Pipeline("parts")
    p.add(steps.source, params={"n": 6})
    p.add(steps.partition, inputs={"xs": "source"}, params={"cut": 2})
    p.add(steps.scale, inputs={"xs": "partition.high"})
    run = p.run()
    assert run.load("partition", "low") == [0, 1]
    assert run.load("scale") == [4, 6, 8, 10]


def test_class_steps_cache_like_function_steps(tmp_repo, executions):
    p = Pipeline("powers")
    p.add(steps.source)
    p.add(steps.Power(exponent=3), inputs={"xs": "source"})
    assert p.run().load("Power") == [0, 1, 8, 27, 64]
    executions.reset()
    q = Pipeline("powers")
    q.add(steps.source)
    q.add(steps.Power(exponent=3), inputs={"xs": "source"})
    assert set(q.run().statuses.values()) == {"cached"}
    assert executions.names() == []


def test_a_dirty_tree_warns_and_is_recorded(tmp_repo):
    tmp_repo.gen({"tracked.txt": "v1\n"})
    tmp_repo.commit()
    tmp_repo.gen({"tracked.txt": "v2\n"})
    with pytest.warns(DirtyTreeWarning, match="uncommitted changes"):
        run = steps.diamond().run()
    assert run.git_dirty is True
    tmp_repo.commit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DirtyTreeWarning)
        clean = steps.diamond().run()
    assert clean.git_dirty is False


def test_runs_record_the_environment_they_used(tmp_repo):
    import platform

    steps.diamond().run()
    repo = Repository()
    record = repo.metadata.list_runs("diamond")[0]
    env = repo.metadata.get_environment(record.environment_hash)
    assert env["python"] == platform.python_version()
    assert env["packages"]["sqlalchemy"]
    assert record.hostname and record.user == "tester@example.com"


def test_identical_outputs_of_two_pipelines_are_stored_once(tmp_repo):
    steps.diamond("one").run()
    steps.diamond("two", offset=5).run()
    root = Path(Repository().artifacts.uri)
    # one: source, scale, shift, combine; two adds only its own shift and combine.
    assert len([d for d in root.glob("??/*") if d.is_dir()]) == 6


def test_rerun_from_config_alone_in_a_new_process(tmp_repo, executions):
    steps.diamond().run()
    executions.reset()
    result = tmp_repo.collab("run", "pipelines/diamond.yaml")
    assert result.returncode == 0, result.stderr
    assert "4 cached" in result.stdout
    assert executions.names() == []


def test_collab_run_shows_failed_step_without_traceback(tmp_repo):
    p = Pipeline("crash-cli")
    p.add(steps.source)
    p.add(steps.explode, inputs={"xs": "source"})
    with pytest.raises(Exception):  # noqa: B017 - the CLI run below is what is checked
        p.run()
    result = tmp_repo.collab("run", "pipelines/crash-cli.yaml")
    assert result.returncode == 1
    assert "error: step 'explode' of pipeline 'crash-cli' failed: RuntimeError: boom" in result.stderr
    assert "hint:" in result.stderr and "collab run pipelines/crash-cli.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_artifact_store_survives_concurrent_writers_of_the_same_content(tmp_repo):
    from concurrent.futures import ThreadPoolExecutor

    from zenml_collab.core.artifacts.base import save_artifact

    store = Repository().artifacts
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda _: save_artifact(store, list(range(1000))), range(16)))
    assert len({r.hash for r in refs}) == 1
    assert len(list(Path(store.uri).glob("??/*"))) == 1
    assert not any((Path(store.uri) / ".tmp").iterdir())


def test_collab_quickstart_shows_cached_steps(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()",
                             "quickstart", "--dir", str(tmp_path / "qs")],
                            capture_output=True, text=True, timeout=600,
                            env={"COLUMNS": "200", **__import__("os").environ})
    assert result.returncode == 0, result.stderr
    assert "cached" in result.stdout
    shutil.rmtree(tmp_path / "qs")


def test_collab_run_imports_steps_from_the_repository_root(tmp_repo):
    tmp_repo.gen({"rootsteps.py": "from zenml_collab import step\n\n@step\n"
                                  "def hello() -> str:\n    return 'hi'\n"})
    made = tmp_repo.python("from zenml_collab import Pipeline\nimport rootsteps\n"
                           "p = Pipeline('rooted')\np.add(rootsteps.hello)\np.run()\n")
    assert made.returncode == 0, made.stderr
    sub = tmp_repo.root / "pipelines"
    result = subprocess.run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()",
                             "run", "rooted.yaml"], cwd=sub, capture_output=True, text=True,
                            env={k: v for k, v in __import__("os").environ.items()
                                 if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert "1 cached" in result.stdout


def test_a_source_that_cannot_be_fingerprinted_fails_the_step_clearly(tmp_repo, executions):
    from zenml_collab.errors import StepFailedError

    p = Pipeline("unfingerprintable")
    p.add(steps.BrokenSource(path="/missing/data.csv"))
    with pytest.raises(StepFailedError, match="could not fingerprint its source: OSError"):
        p.run()
    assert executions.names() == []
    (failed,) = Repository().get_pipeline_runs("unfingerprintable")
    assert failed.status == "failed"
