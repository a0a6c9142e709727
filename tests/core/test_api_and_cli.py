"""The public surface: API pin, import cost, layering, pipeline validation, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import collab_test_steps as steps
import pytest

import zenml_collab
from zenml_collab import Pipeline, Repository
from zenml_collab.errors import CollabError, ImmutablePipelineError, PipelineError

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_is_pinned():
    assert zenml_collab.__all__ == sorted([
        "BaseStep", "CSVDatasource", "CollabError", "Evaluator", "Pipeline", "RandomSplit",
        "Repository", "Run", "SklearnTrainer", "StandardPreprocesser", "Step", "StepResult",
        "TrainingPipeline", "__version__", "step"])
    for name in zenml_collab.__all__:
        assert getattr(zenml_collab, name) is not None


def test_import_does_not_load_heavy_libraries():
    code = ("import sys, zenml_collab; heavy = ['pandas', 'sqlalchemy', 'google', 'docker', "
            "'numpy', 'sklearn', 'alembic', 'rich']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_collab_help_does_not_load_heavy_libraries():
    code = ("import sys\nfrom zenml_collab.cli.main import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "print([m for m in ('pandas', 'sqlalchemy', 'google', 'docker') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_layers_are_respected():
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_recorded_pipelines_are_immutable_and_the_error_names_copy(tmp_repo):
    steps.diamond().run()
    loaded = Repository().get_pipeline_by_name("diamond")
    with pytest.raises(ImmutablePipelineError, match=r"copy\(new_name="):
        loaded.add(steps.scale, name="extra", inputs={"xs": "source"})
    with pytest.raises(ImmutablePipelineError, match="copy"):
        loaded.set_params("scale", factor=3)


def test_a_pipeline_object_is_frozen_after_it_has_run(tmp_repo):
    p = steps.diamond()
    p.run()
    with pytest.raises(ImmutablePipelineError, match="it has run"):
        p.add(steps.scale, name="extra", inputs={"xs": "source"})


def test_copy_shares_nothing_mutable_with_the_original(tmp_repo):
    original = steps.diamond()
    original.run()
    before = original.to_config().model_dump(exclude={"created"})
    clone = original.copy(new_name="diamond copy")
    clone.set_params("scale", factor=7)
    clone.add(steps.scale, name="extra", inputs={"xs": "combine"})
    clone.step("shift").params["offset"] = 99  # a copy handed out, not the node's own
    assert original.to_config().model_dump(exclude={"created"}) == before
    assert clone.step("shift").params == {"offset": 1}


def test_redefining_a_recorded_pipeline_under_the_same_name_is_refused(tmp_repo):
    steps.diamond().run()
    with pytest.raises(PipelineError, match="already exists with a different definition"):
        steps.diamond(factor=5).run()


@pytest.mark.parametrize(("build", "message"), [
    (lambda p: p.add(steps.scale, inputs={"xs": "nowhere"}), "unknown step 'nowhere'"),
    (lambda p: (p.add(steps.source), p.add(steps.source)), "already has a step named 'source'"),
    (lambda p: p.add(steps.scale), "missing argument(s) ['xs']"),
    (lambda p: (p.add(steps.source), p.add(steps.scale, inputs={"xs": "source"},
                                          params={"bogus": 1})), "no argument(s) ['bogus']"),
    (lambda p: (p.add(steps.source), p.add(steps.scale, inputs={"xs": "source.nope"})),
     "has no output 'nope'"),
    (lambda p: p.add(steps.source, params={"n": object()}), "must be JSON values"),
    (lambda p: p.add(len), "is not a step"),
    (lambda p: p.add(steps.source, name="bad name"), "invalid step name"),
])
def test_ill_formed_pipelines_are_refused_with_a_clear_error(build, message):
    with pytest.raises(PipelineError) as info:
        build(Pipeline("bad"))
    assert message in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(("content", "message"), [
    ("name: [unclosed\n", "is not valid YAML (line"),
    ("- just\n- a list\n", "must hold a mapping"),
    ("name: x\nsteps: []\nsurprise: 1\n", "surprise: unknown key"),
    ("name: x\n", "steps: Field required"),
    ("name: x\nsteps:\n- name: a\n  step: not-an-import-path\n", "expected an import path"),
    ("name: x\nsteps:\n- name: a\n  step: nosuchmodule:thing\n", "cannot import step"),
    ("name: x\nsteps:\n- name: a\n  step: collab_test_steps:scale\n  inputs: {xs: b}\n"
     "- name: b\n  step: collab_test_steps:scale\n  inputs: {xs: a}\n", "has a cycle"),
])
def test_a_corrupt_pipeline_config_gets_a_clear_error(tmp_repo, content, message):
    tmp_repo.gen({"pipelines/x.yaml": content})
    result = tmp_repo.collab("run", "pipelines/x.yaml")
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_team_config_names_the_file_and_the_key(tmp_repo):
    tmp_repo.gen({"collab.yaml": "metadata:\n  kind: oracle\n"})
    result = tmp_repo.collab("pipelines", "list")
    assert result.returncode == 1
    assert "collab.yaml: metadata.kind:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_password_in_the_team_config_is_refused(tmp_repo):
    tmp_repo.gen({"collab.yaml": "metadata:\n  kind: mysql\n  password: hunter2\n"})
    result = tmp_repo.collab("pipelines", "list")
    assert result.returncode == 1
    assert "never be in collab.yaml" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_init_ignores_the_local_dir_and_is_idempotent(tmp_path):
    from zenml_collab.testing.repos import TmpRepo, make_git_repo

    make_git_repo(tmp_path / "r")
    cli = TmpRepo(tmp_path / "r")
    first = cli.collab("init")
    assert first.returncode == 0, first.stderr
    assert "added .collab/ to .gitignore" in first.stdout
    assert (tmp_path / "r" / ".gitignore").read_text().count(".collab/") == 1
    second = cli.collab("init")
    assert "already initialised" in second.stdout
    assert (tmp_path / "r" / ".gitignore").read_text().count(".collab/") == 1
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=tmp_path / "r",
                            capture_output=True, text=True).stdout
    assert "!! .collab/" in status


def test_init_outside_git_says_to_git_init(tmp_path):
    from zenml_collab.testing.repos import TmpRepo

    (tmp_path / "plain").mkdir()
    result = TmpRepo(tmp_path / "plain").collab("init")
    assert result.returncode == 1
    assert "not inside a git repository" in result.stderr and "git init" in result.stderr


def test_commands_outside_a_repository_say_to_init(tmp_path):
    from zenml_collab.testing.repos import TmpRepo

    (tmp_path / "nowhere").mkdir()
    result = TmpRepo(tmp_path / "nowhere").collab("runs", "list")
    assert result.returncode == 1
    assert "collab init" in result.stderr


def test_runs_list_and_show_report_statuses_and_reasons(tmp_repo):
    steps.diamond().run()
    run = steps.diamond().run()
    listing = tmp_repo.collab("runs", "list", "diamond")
    assert listing.returncode == 0 and run.id[:12] in listing.stdout
    shown = tmp_repo.collab("runs", "show", run.id[:10], env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("cache hit") == 4
    missing = tmp_repo.collab("runs", "show", "ffffffffff")
    assert missing.returncode == 1 and "no single run matches" in missing.stderr
    pipelines = tmp_repo.collab("pipelines", "list")
    assert "diamond" in pipelines.stdout


def test_version_and_usage_errors_have_documented_exit_codes(tmp_repo):
    assert tmp_repo.collab("--version").stdout.strip() == f"collab, version {zenml_collab.__version__}"
    assert tmp_repo.collab("runs", "show").returncode == 2
    assert tmp_repo.collab("no-such-command").returncode == 2


def test_the_recorded_credentials_file_is_used_unless_the_environment_names_one(
        tmp_repo, monkeypatch):
    tmp_repo.gen({".collab/local.yaml": "credentials_file: /keys/member.json\n",
                  "collab.yaml": "artifacts:\n  uri: gs://team-bucket/zenml\n"})
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    store = Repository().artifacts
    with pytest.raises(CollabError, match=r"/keys/member\.json"):
        store.client  # noqa: B018 - building the client loads the recorded file
    import os

    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ  # no process-wide side effect


def test_steps_defined_in_the_running_script_warn_and_collab_run_explains(tmp_repo):
    script = ("from zenml_collab import Pipeline, step\n\n@step\ndef hi() -> int:\n"
              "    return 1\n\np = Pipeline('scripted')\np.add(hi)\np.run()\n")
    tmp_repo.gen({"script.py": script})
    ran = tmp_repo.python("import runpy; runpy.run_path('script.py', run_name='__main__')")
    assert ran.returncode == 0, ran.stderr
    assert "cannot import it; move it into a module" in ran.stderr
    again = tmp_repo.collab("run", "pipelines/scripted.yaml")
    assert again.returncode == 1
    assert "defined in the script that first ran this pipeline" in again.stderr
    assert "Traceback" not in again.stderr


def test_two_names_with_one_config_file_are_refused(tmp_repo):
    steps.diamond("Pipeline A").run()
    with pytest.raises(PipelineError, match="which holds pipeline 'Pipeline A'"):
        steps.diamond("pipeline-a", factor=3).run()
    assert Repository().get_pipeline_by_name("Pipeline A").step("scale").params == {"factor": 2}


def test_collab_run_of_a_python_file_says_what_it_expects(tmp_repo):
    tmp_repo.gen({"p1.py": "print('hi')\n"})
    result = tmp_repo.collab("run", "p1.py")
    assert result.returncode == 1
    assert "'" in result.stderr and "is not a pipeline config" in result.stderr
    assert "PosixPath" not in result.stderr


def test_a_failed_step_shows_where_in_the_members_code(tmp_repo):
    p = Pipeline("crash-where")
    p.add(steps.source)
    p.add(steps.explode, inputs={"xs": "source"})
    with pytest.raises(Exception):  # noqa: B017 - the CLI run below is what is checked
        p.run()
    result = tmp_repo.collab("run", "pipelines/crash-where.yaml")
    assert "collab_test_steps.py:" in result.stderr and "in explode" in result.stderr
    debug = tmp_repo.collab("run", "pipelines/crash-where.yaml", env={"COLLAB_DEBUG": "1"})
    assert "Traceback" in debug.stderr and "RuntimeError: boom" in debug.stderr


def test_a_store_newer_than_this_version_is_never_migrated_down(tmp_repo):
    import sqlalchemy as sa

    with Repository().metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    status = tmp_repo.collab("db", "status", env={"COLUMNS": "300"})
    assert "newer than this zenml-collab" in status.stdout
    upgrade = tmp_repo.collab("db", "upgrade")
    assert upgrade.returncode == 1
    assert "upgrade zenml-collab" in upgrade.stderr and "internal error" not in upgrade.stderr


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://u:p@ss@127.0.0.1:1/db", {"username": "u", "password": "p@ss", "host": "127.0.0.1",
                                        "port": 1, "database": "db"}),
    ("mysql+pymysql://u:p%40ss@h/db", {"username": "u", "password": "p@ss", "host": "h",
                                        "port": 3306, "database": "db"}),
])
def test_db_urls_with_special_characters_in_the_password_parse(url, expected):
    from zenml_collab.config import _parse_db_url

    parsed = _parse_db_url(url)
    assert {k: parsed[k] for k in expected} == expected


def test_quickstart_in_an_unusable_directory_is_a_clear_error(tmp_path):
    from zenml_collab.testing.repos import TmpRepo

    result = TmpRepo(tmp_path).collab("quickstart", "--dir", "/proc/not-here")
    assert result.returncode == 1
    assert "cannot use /proc/not-here" in result.stderr and "Traceback" not in result.stderr
