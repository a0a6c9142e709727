"""Red-team findings against the trust boundary (DESIGN §10): each test names a behaviour that
must hold when a hostile teammate writes the shared stores or a committed file."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from zenml_collab.core.artifacts.base import ArtifactRef, load_artifact, save_artifact
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.errors import MaterializerError
from zenml_collab.testing.hostile import store_raw_artifact


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


_store_raw = store_raw_artifact  # what a hostile teammate can do


def _skops(schema: dict) -> bytes:
    from skops.io._protocol import PROTOCOL

    schema = {**schema, "protocol": PROTOCOL}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return out.getvalue()


def _str(value: str) -> dict:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _exec_args(canary: Path) -> dict:
    """(code, {}) as a skops tuple: the arguments of numpy's ``runstring(astr, dict)``."""
    empty = {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
             "content": {}, "key_types": {"__class__": "list", "__module__": "builtins",
                                          "__loader__": "ListNode", "content": []}}
    code = f"open({str(canary)!r}, 'w').write('ran')"
    return {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
            "content": [_str(code), empty]}


RUNSTRING = {"__class__": "runstring", "__module__": "numpy.testing._private.utils"}


@pytest.mark.parametrize("payload", ["constructor", "loss", "function"])
def test_a_skops_model_naming_a_numpy_function_never_runs_it(store, tmp_path, payload):
    """numpy.testing._private.utils.runstring is "from numpy" but is exec(): a skops file that
    calls it (ConstructorFromReduceNode / LossNode) or hands it to a FunctionTransformer must be
    refused, not trusted because its module starts with numpy."""
    canary = tmp_path / "canary"
    if payload == "constructor":
        schema = {**RUNSTRING, "__loader__": "ConstructorFromReduceNode",
                  "content": _exec_args(canary)}
    elif payload == "loss":
        schema = {**RUNSTRING, "__loader__": "LossNode", "content": {
            "__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {}, "key_types": {"__class__": "list", "__module__": "builtins",
                                         "__loader__": "ListNode", "content": []}},
            "__reduce__": {"args": _exec_args(canary)}}
    else:
        import skops.io as sio
        from sklearn.preprocessing import FunctionTransformer

        model = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(FunctionTransformer(np.log1p))))
                           .read("schema.json"))
        model["content"]["content"]["func"] = {**RUNSTRING, "__loader__": "FunctionNode"}
        model["content"]["content"]["kw_args"] = {
            "__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
            "content": {"dict": {"__class__": "dict", "__module__": "builtins",
                                 "__loader__": "DictNode", "content": {},
                                 "key_types": {"__class__": "list", "__module__": "builtins",
                                               "__loader__": "ListNode", "content": []}}},
            "key_types": {"__class__": "list", "__module__": "builtins",
                          "__loader__": "ListNode", "content": [_str("dict")]}}
        schema = model
    ref = _store_raw(store, "sklearn", {"model.skops": _skops(schema)})
    with pytest.raises(MaterializerError) as info:
        value = load_artifact(store, ref)
        if payload == "function":  # what the victim does with a model: use it
            value.transform(f"open({str(canary)!r}, 'w').write('ran')")
    assert info.value.hint
    assert "runstring" in info.value.message
    assert not canary.exists()


def test_real_scikit_learn_models_still_load_without_opt_in(store):
    """The guide's workflow: tree ensembles, histogram boosting and neighbours need sklearn's
    own internal types (Tree, TreePredictor, KDTree), built from state, never called."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    y = (x[:, 0] > 0.5).astype(int)
    from sklearn.ensemble import GradientBoostingClassifier
    for model in (RandomForestClassifier(n_estimators=3, random_state=0),
                  GradientBoostingClassifier(n_estimators=3),
                  HistGradientBoostingClassifier(max_iter=3), KNeighborsClassifier(),
                  KNeighborsClassifier(algorithm="ball_tree")):
        model.fit(x, y)
        ref = save_artifact(store, model)
        loaded = load_artifact(store, ArtifactRef.from_json(ref.to_json(), origin="a test"))
        assert (loaded.predict(x) == model.predict(x)).all()


@pytest.mark.parametrize("private", [".collab/local.yaml", ".git/config", "./.collab/../.git/config"])
def test_a_committed_config_cannot_snapshot_a_members_private_files(tmp_repo, private):
    """``.collab/local.yaml`` (the member's DB password) and ``.git/config`` (a token in a remote
    URL) are inside the repository but never data: a teammate's committed pipeline config that
    reads them (as a one-column CSV) must not upload them to the team's artifact store."""
    import subprocess

    (tmp_repo.root / ".collab" / "local.yaml").write_text(
        "version: 1\nmetadata:\n  kind: sqlite\n  password: TOPSECRET-PW\n")
    subprocess.run(["git", "-C", str(tmp_repo.root), "config", "remote.origin.url",
                    "https://x:TOPSECRET-PW@example.invalid/r.git"], check=True)
    theirs = _committed_copy(tmp_repo, "path: d.csv",
                             f'path: {private}\n    sep: "\\x01"\n    header: null')
    result = tmp_repo.collab("run", str(theirs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "private" in result.stderr and "Traceback" not in result.stderr
    stored = [f for f in (tmp_repo.root / ".collab" / "artifacts").rglob("*") if f.is_file()]
    assert not any(b"TOPSECRET" in f.read_bytes() for f in stored)


def _committed_step_config(tmp_repo, step_path: str) -> Path:
    """What a teammate commits: a pipeline config whose step entry names ``step_path``."""
    return _committed_copy(tmp_repo, "zenml_collab.core.training.steps:CSVDatasource",
                           step_path)


def _committed_copy(tmp_repo, old: str, new: str) -> Path:
    """What a teammate commits: this member's recorded CSV pipeline with ``old`` in its
    config replaced by ``new``, as pipeline ``theirs``."""
    (tmp_repo.root / "d.csv").write_text("a,b\n1,2\n")
    from zenml_collab import CSVDatasource, Pipeline

    p = Pipeline("src")
    p.add(CSVDatasource(name="d", path="d.csv"))
    p.run()
    text = (tmp_repo.root / "pipelines" / "src.yaml").read_text()
    theirs = tmp_repo.root / "pipelines" / "theirs.yaml"
    theirs.write_text(text.replace("name: src\n", "name: theirs\n").replace(old, new))
    return theirs


@pytest.mark.parametrize("step_path", ["venv.__main__:main", "unittest.__main__:main",
                                       ".relative:x", ":x", "a..b:x"])
def test_a_committed_step_path_never_imports_a_modules_main(tmp_repo, step_path):
    """``venv.__main__`` runs venv on import with the CLI's own argv (`collab run
    pipelines/theirs.yaml` tries to create virtualenvs and exits without a message);
    ``unittest.__main__`` runs test discovery; a relative or empty module name crashed."""
    theirs = _committed_step_config(tmp_repo, step_path)
    before = {p.name for p in tmp_repo.root.iterdir()}
    result = tmp_repo.collab("run", str(theirs))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert {p.name for p in tmp_repo.root.iterdir()} == before


def test_a_committed_step_path_outside_the_repository_is_never_imported(tmp_repo):
    theirs = _committed_step_config(tmp_repo, "this:s")  # `import this` prints the Zen
    result = tmp_repo.collab("run", str(theirs))
    assert result.returncode == 1
    assert "Beautiful is better than ugly" not in result.stdout + result.stderr
    assert "outside the repository" in result.stderr and "COLLAB_TRUSTED_STEP_MODULES" in result.stderr
    allowed = tmp_repo.collab("run", str(theirs), env={"COLLAB_TRUSTED_STEP_MODULES": "this"})
    assert "is not a step" in allowed.stderr  # the member's own opt-in is honoured


@pytest.mark.parametrize("outputs_json", [
    "not json", "[1, 2]", "5", '{"output": 5}', '{"output": {"hash": "../x"}}'])
def test_a_malformed_cache_entry_is_a_clear_error_never_a_crash(tmp_repo, outputs_json):
    """A cache entry's outputs come from the shared database: whatever a teammate (or a broken
    client) wrote there, `collab run` ends with a CollabError, never a traceback."""
    import collab_test_steps as steps
    import sqlalchemy as sa

    from zenml_collab import Repository

    steps.diamond().run()
    with Repository().metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE cache_entries SET outputs_json = :bad"), {"bad": outputs_json})
    result = tmp_repo.collab("run", "pipelines/diamond.yaml")
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, \
        result.stderr


def _views_docs():
    import pandas as pd

    from zenml_collab.core.analysis.views import compute_data_views

    frame = pd.DataFrame({"num": np.arange(40.0), "cat": ["a", "b"] * 20,
                          "__split__": ["train"] * 30 + ["eval"] * 10})
    views = compute_data_views(frame, split_column="__split__")
    return {"schema": views.schema_dict(), "statistics": views.statistics_dict(),
            "anomalies": views.anomalies_dict()}


def test_a_hostile_column_name_or_value_never_becomes_markup_in_the_html_report():
    """Stored statistics are a teammate's JSON: every string lands escaped in the report."""
    import pandas as pd

    from zenml_collab.core.analysis.report import report_html
    from zenml_collab.core.analysis.views import compute_data_views, views_from_dicts

    evil = "<script>alert(1)</script>"
    frame = pd.DataFrame({evil: [evil, "<img src=x onerror=alert(1)>"] * 20, "n": range(40),
                          "__split__": ["train"] * 30 + [evil] * 10})
    views = compute_data_views(frame, split_column="__split__")
    decoded = views_from_dicts(schema=views.schema_dict(), statistics=views.statistics_dict(),
                               anomalies=views.anomalies_dict())
    for value in (decoded["schema"], decoded["statistics"], *decoded["anomalies"].values()):
        page = report_html(value, title=evil)
        assert "<script" not in page and "<img src=x" not in page


@pytest.mark.parametrize("kind", ["schema", "statistics", "anomalies"])
def test_a_malformed_stored_view_document_is_an_analysis_error(kind):
    import copy

    from zenml_collab.core.analysis.render import render_value
    from zenml_collab.core.analysis.report import report_html
    from zenml_collab.core.analysis.views import views_from_dicts
    from zenml_collab.errors import CollabError

    doc = _views_docs()[kind]

    def leaves(node, path=()):
        if isinstance(node, dict):
            for key, item in node.items():
                yield from leaves(item, (*path, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                yield from leaves(item, (*path, i))
        else:
            yield path

    crashes = []
    for path in list(leaves(doc)):
        for bad in ("x", None, [1], {"a": 1}):
            hostile = copy.deepcopy(doc)
            node = hostile
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = bad
            try:
                out = views_from_dicts(**{kind: hostile})[kind]
                for value in (out.values() if isinstance(out, dict) else [out]):
                    report_html(value)
                    render_value(value)
            except CollabError:
                pass
            except Exception as exc:
                crashes.append(f"{'.'.join(map(str, path))}={bad!r}: {type(exc).__name__}")
    assert not crashes, crashes[:10]


@pytest.mark.parametrize("proxy", ["image: docker.io/mallory/cloud-sql-proxy",
                                   "image: gcr.io/cloud-sql-connectors/cloud-sql-proxy.evil",
                                   "version: '2.14.1 --help'"])
def test_a_committed_collab_yaml_cannot_choose_the_image_that_receives_my_credentials(
        tmp_repo, proxy):
    """The proxy container gets the member's credentials file (an ADC refresh token): a
    teammate's collab.yaml naming their own image would steal it from every member who
    starts the proxy. Refused when the file is read, with the member's own way out."""
    (tmp_repo.root / "collab.yaml").write_text(f"version: 1\nproxy:\n  {proxy}\n")
    result = tmp_repo.collab("config", "validate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "proxy" in result.stderr and "Traceback" not in result.stderr


def test_collab_yaml_may_pin_a_version_of_the_official_proxy_image(tmp_repo):
    from zenml_collab.config import load_team_config

    (tmp_repo.root / "collab.yaml").write_text(
        "version: 1\nproxy:\n  image: gcr.io/cloud-sql-connectors/cloud-sql-proxy\n"
        "  version: 2.15.0-alpine\n")
    assert load_team_config(tmp_repo.root).proxy.version == "2.15.0-alpine"


@pytest.mark.parametrize("url", ["mysql://db.example:3306/team?password=TOPSECRET",
                                 "mysql://alice@db.example:3306/team?user=x&password=TOPSECRET",
                                 "mysql://alice:TOP?SECRET@db/team"])
def test_a_password_in_a_db_url_query_is_never_echoed(tmp_repo, url):
    result = tmp_repo.collab("config", "show", env={"COLLAB_DB_URL": url})
    assert "SECRET" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_teammates_row_cannot_send_escape_sequences_to_my_terminal(tmp_repo):
    import collab_test_steps as steps
    import sqlalchemy as sa

    from zenml_collab import Repository

    run = steps.diamond().run()
    evil = "eve\x1b]52;c;ZWNobyBwd25lZA==\x1b\\\x1b[2J"
    with Repository().metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET user = :e, hostname = :e, error = :e"), {"e": evil})
        conn.execute(sa.text("UPDATE pipelines SET created_by = :e"), {"e": evil})
    for args in (["pipelines", "list"], ["runs", "list"], ["runs", "show", run.id]):
        result = tmp_repo.collab(*args)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout + result.stderr, args


@pytest.mark.parametrize("check", ["check_project", "check_region", "check_instance",
                                   "check_database", "check_tier", "check_bucket"])
def test_a_name_with_a_trailing_newline_is_refused(check):
    """``re.match(r"^...$")`` accepts "name\\n" (``$`` matches before a final newline)."""
    from zenml_collab import names
    from zenml_collab.errors import ConfigError

    good = {"check_project": "my-project", "check_region": "us-east1",
            "check_instance": "inst", "check_database": "zenml",
            "check_tier": "db-f1-micro", "check_bucket": "team-bucket"}[check]
    getattr(names, check)(good)
    with pytest.raises(ConfigError):
        getattr(names, check)(good + "\n")


def test_a_member_with_a_trailing_newline_is_refused():
    from zenml_collab import names
    from zenml_collab.errors import ConfigError

    names.check_member("user:a@example.com")
    with pytest.raises(ConfigError):
        names.check_member("user:a@example.com\n")


@pytest.mark.parametrize("instance", [
    "--sqladmin-api-endpoint=https://evil.example/x:r:i", "p:europe-west1:main\n",
    "p:europe-west1:-i", "p:europe-west1:a b", "p:europe-west1:a\x1b[2J"])
def test_a_committed_instance_connection_name_cannot_be_a_flag_or_odd_text(tmp_repo, instance):
    """The connection name is the proxy's first argument (and part of the connector's URLs):
    a committed collab.yaml must not smuggle a flag or whitespace into it."""
    import yaml

    (tmp_repo.root / "collab.yaml").write_text(yaml.safe_dump(
        {"version": 1, "metadata": {"kind": "cloudsql", "instance": instance}}))
    result = tmp_repo.collab("config", "validate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "connection name" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_step_run_row_is_a_clear_error_in_runs_show(tmp_repo):
    import collab_test_steps as steps
    import sqlalchemy as sa

    from zenml_collab import Repository

    run = steps.diamond().run()
    with Repository().metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE step_runs SET params_json = 'not json'"))
    result = tmp_repo.collab("runs", "show", run.id)
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_skops_schema_decompression_bomb_is_refused_before_it_is_read(store):
    """A few KiB in the store, 100 MiB of schema.json once inflated: refused from the zip's
    own directory, without inflating it."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (100 << 20))
    assert len(out.getvalue()) < 1 << 20
    ref = _store_raw(store, "sklearn", {"model.skops": out.getvalue()})
    with pytest.raises(MaterializerError, match="expands to more than"):
        load_artifact(store, ref)


@pytest.mark.parametrize("child", [10**9, 0, -7])
def test_a_crafted_tree_model_never_crashes_the_members_process(tmp_path, child):
    """sklearn's Cython indexes a tree's node array without bounds checks: a child index out of
    range segfaulted the member's process at predict (skops itself does not trust Tree for
    this reason); a child pointing back at the root made predict loop forever."""
    import subprocess
    import sys

    code = f'''
import io, zipfile, numpy as np, skops.io as sio
from pathlib import Path
from sklearn.tree import DecisionTreeClassifier
from zenml_collab.core.artifacts.materializers import SklearnMaterializer
from zenml_collab.errors import CollabError
x = np.random.default_rng(0).random((40, 3))
model = DecisionTreeClassifier(random_state=0).fit(x, x[:, 0] > 0.5)
src = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
out = io.BytesIO()
with zipfile.ZipFile(out, "w") as dst:
    for name in src.namelist():
        data = src.read(name)
        if name.endswith(".npy"):
            array = np.load(io.BytesIO(data), allow_pickle=False)
            if array.dtype.names and "left_child" in array.dtype.names:
                array["left_child"][0] = {child}
                buffer = io.BytesIO(); np.save(buffer, array, allow_pickle=False)
                data = buffer.getvalue()
        dst.writestr(name, data)
folder = Path({str(tmp_path)!r})
(folder / "model.skops").write_bytes(out.getvalue())
try:
    SklearnMaterializer().load(folder).predict(np.zeros((1, 3)))
except CollabError:
    pass
'''
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
