"""Property-based fuzzing of what a teammate commits or a member types.

Generated ``collab.yaml``, ``.collab/local.yaml``, ``pipelines/*.yaml`` and CLI arguments go
through the real CLI entry point in this process. Every case must end in success or a
:class:`CollabError` (exit 1 or 2; the CLI's "internal error" means a traceback was hidden),
and nothing may be written outside ``.collab/``. The budget is fixed (few examples, derandomized,
no deadline) so the module runs in CI in well under a minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability.matrix import fault

BUDGET = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
ALLOWED_EXITS = {0, 1, 2}

# -- values -----------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["sqlite", "mysql", "cloudsql", "iam", "password", "proxy", "python",
                     "gs://UPPER/x", "gs://ok-bucket/p", "s3://b/x", "../outside", "/etc/passwd",
                     "~/.ssh/id_rsa", "p:r:i", "a:b", "", "\x00", "é", "0" * 300, "*", "&a"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def keyed(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings that mostly use the real keys (so validation goes deep), sometimes others."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=10)), values,
                           max_size=6)


METADATA_KEYS = ["kind", "path", "host", "port", "username", "password", "database",
                 "instance", "auth", "connector", "store_id"]
metadata = keyed(METADATA_KEYS)
team = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.just(1), values), "metadata": st.one_of(metadata, values),
    "artifacts": st.one_of(keyed(["uri"]), values),
    "gcp": st.one_of(keyed(["project", "region", "instance", "database", "bucket", "db_auth",
                            "members"]), values),
})
local = st.fixed_dictionaries({}, optional={
    "version": st.one_of(st.just(1), values), "metadata": st.one_of(metadata, values),
    "artifacts": st.one_of(keyed(["uri"]), values), "credentials_file": values,
    "proxy_port": values, "connector": values,
})
step_entry = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["a", "b"]), st.text(max_size=8)),
     "step": st.one_of(st.sampled_from(["collab_test_steps:source", "collab_test_steps:scale",
                                        "os:system", "builtins:eval", "no.such:thing", ":",
                                        "collab_test_steps:"]), st.text(max_size=20))},
    optional={"params": st.one_of(st.dictionaries(st.text(max_size=6), values, max_size=3),
                                  values),
              "inputs": st.one_of(st.dictionaries(st.sampled_from(["xs", "q"]),
                                                  st.sampled_from(["a", "b", "a.out", "zz"]),
                                                  max_size=2), values),
              "backend": values})
pipeline = st.fixed_dictionaries({"name": st.one_of(st.just("fuzz"), st.text(max_size=12))},
                                 optional={"kind": st.one_of(
                                               st.sampled_from(["pipeline", "training"]), values),
                                           "version": values,
                                           "steps": st.one_of(st.lists(step_entry, max_size=3),
                                                              values)})


def as_text(data: Any) -> st.SearchStrategy[str]:
    return st.just(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def documents(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[str | bytes]:
    """YAML of generated mappings, plus raw text and bytes (bad UTF-8, aliases, tabs...)."""
    return st.one_of(
        strategy.flatmap(as_text),
        st.text(max_size=200),
        st.binary(max_size=200),
        st.sampled_from(["a: &x [1]\nb: *x\n", "- 1\n- 2\n", "{", "\t- x", "!!python/object:os.system {}",
                         "version: 1\n" * 3, "a: " + "[" * 50 + "]" * 50]),
    )


# -- the harness ------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, str]:
    """Content hashes of every file outside .git/ and .collab/."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".git", ".collab") or not path.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def collab(root: Path, args: list[str]) -> tuple[int, str]:
    from zenml_collab.testing.cli import run_cli

    done = run_cli(*args, cwd=root)
    return done.code, done.output


def check(root: Path, args: list[str], before: dict[str, str]) -> None:
    code, output = collab(root, args)
    assert code in ALLOWED_EXITS, (args, code, output[-2000:])
    assert "internal error" not in output and "Traceback" not in output, (args, output[-2000:])
    assert snapshot(root) == before, ("wrote outside .collab/", args)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from zenml_collab.actions.init import init_repo
    from zenml_collab.testing.repos import make_git_repo

    tests = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(tests / "core"))
    monkeypatch.setenv("COLLAB_TEST_COUNTER", str(tmp_path / "counter.log"))
    monkeypatch.setenv("COLLAB_NO_BROWSER", "1")
    for name in ("COLLAB_DB_URL", "COLLAB_ARTIFACT_URI", "COLLAB_DB_PASSWORD",
                 "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "repo"
    make_git_repo(root)
    init_repo(root)
    yield root


def reset(root: Path) -> None:
    for rel in ("collab.yaml", ".collab/local.yaml"):
        (root / rel).unlink(missing_ok=True)


# -- the properties ---------------------------------------------------------------------------
@fault("fuzz.config-files",
       fault="any generated collab.yaml / .collab/local.yaml (YAML, raw text, bad UTF-8)",
       sees="`config validate`, `config show`, `pipelines list`: success or an error naming "
            "the file and key, never a traceback",
       exit_code="0/1/2", kept="nothing written outside .collab/")
@BUDGET
@given(team_doc=documents(team), local_doc=documents(local),
       command=st.sampled_from([["config", "validate"], ["config", "show"],
                                ["pipelines", "list"], ["runs", "list"]]))
def test_generated_config_files_end_in_success_or_a_collab_error(
    repo: Path, team_doc: str | bytes, local_doc: str | bytes, command: list[str],
) -> None:
    reset(repo)
    write(repo / "collab.yaml", team_doc)
    write(repo / ".collab" / "local.yaml", local_doc)
    (repo / ".collab" / "local.yaml").chmod(0o600)
    check(repo, command, snapshot(repo))


@fault("fuzz.pipeline-files",
       fault="any generated pipelines/*.yaml (unknown steps, os:system, cycles, duplicates, "
             "bad params)",
       sees="`collab run pipelines/fuzz.yaml`: a run, or an error naming the file and the fix",
       exit_code="0/1/2", kept="nothing written outside .collab/ (and the run's own config)")
@BUDGET
@given(doc=documents(pipeline))
def test_generated_pipeline_files_end_in_success_or_a_collab_error(
    repo: Path, doc: str | bytes,
) -> None:
    reset(repo)
    for old in (repo / "pipelines").glob("*.yaml") if (repo / "pipelines").is_dir() else ():
        old.unlink()
    write(repo / "pipelines" / "fuzz.yaml", doc)
    before = snapshot(repo)
    code, output = collab(repo, ["run", "pipelines/fuzz.yaml"])
    assert code in ALLOWED_EXITS, (doc, code, output[-2000:])
    assert "internal error" not in output and "Traceback" not in output, (doc, output[-2000:])
    after = snapshot(repo)
    # A successful run records its config as pipelines/<slug>.yaml (README): the only write
    # allowed outside .collab/.
    extra = {k for k in after if k not in before or after[k] != before[k]}
    assert code == 0 or not extra, ("a failed run wrote outside .collab/", sorted(extra))
    assert all(k.startswith("pipelines/") and k.endswith(".yaml") for k in extra), sorted(extra)


WORDS = ["config", "validate", "show", "metadata", "artifacts", "pipelines", "list", "runs",
         "db", "status", "--json", "--dir", "--help", "--version", "-h", "", "%", "______",
         "fuzz", "pipelines/none.yaml", "--schema", "--statistics", "\x00", "é", "--limit",
         "-1", "999999999999", "--html", "/dev/null"]
READ_ONLY = [["config", "validate"], ["config", "show"], ["pipelines", "list"], ["runs", "list"],
             ["runs", "show"], ["show"], ["db", "status"], []]


@fault("fuzz.cli-arguments",
       fault="any generated arguments to the read-only commands (config, pipelines, runs, "
             "show, db status)",
       sees="output, a usage error or a clear error; never a traceback",
       exit_code="0/1/2", kept="nothing written outside .collab/")
@BUDGET
@given(prefix=st.sampled_from(READ_ONLY),
       rest=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=4))
def test_generated_cli_arguments_end_in_success_or_a_collab_error(
    repo: Path, prefix: list[str], rest: list[str],
) -> None:
    args = prefix + rest
    if "--html" in args:
        return  # writes the report where it is told: a requested write
    check(repo, args, snapshot(repo))
