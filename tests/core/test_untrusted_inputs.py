"""Committed files and the environment are untrusted input (DESIGN §10): a teammate's config
cannot make a member read files outside the repository, parsers are bounded, bad bytes give a
clear error naming the file, and no message echoes a secret."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from zenml_collab import CSVDatasource, Pipeline
from zenml_collab.config import mask_url
from zenml_collab.core.training.steps import resolve_estimator
from zenml_collab.errors import ConfigError

CSV = "a,b\n1,2\n3,4\n"


def _datasource_pipeline(tmp_repo, path: str, name: str = "src"):
    (tmp_repo.root / "d.csv").write_text(CSV)
    p = Pipeline(name)
    p.add(CSVDatasource(name="d", path=path))
    return p


def _point_config_at(tmp_repo, name: str, path: str) -> Path:
    """What a teammate commits: a new pipeline config whose datasource reads ``path``."""
    text = (tmp_repo.root / "pipelines" / f"{name}.yaml").read_text()
    config = tmp_repo.root / "pipelines" / f"{name}-theirs.yaml"
    config.write_text(text.replace("path: d.csv", f"path: {path}")
                      .replace(f"name: {name}\n", f"name: {name}-theirs\n"))
    return config


@pytest.mark.parametrize("outside", ["/etc/hostname", "~/.config/gcloud/adc.json",
                                     "../../../../etc/hostname"])
def test_a_committed_config_cannot_read_files_outside_the_repository(tmp_repo, outside):
    _datasource_pipeline(tmp_repo, "d.csv").run()
    config = _point_config_at(tmp_repo, "src", outside)
    result = tmp_repo.collab("run", str(config))
    assert result.returncode == 1, result.stderr
    assert "outside the repository" in result.stderr
    assert "--allow-path" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_symlink_in_the_repository_pointing_outside_is_refused(tmp_repo, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text(CSV)
    (tmp_repo.root / "link.csv").symlink_to(secret)
    with pytest.raises(ConfigError, match="outside the repository"):
        _datasource_pipeline(tmp_repo, "link.csv").run()


def test_a_member_may_allow_a_directory_for_their_own_run_only(tmp_repo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.csv").write_text(CSV)
    _datasource_pipeline(tmp_repo, "d.csv").run()
    config = _point_config_at(tmp_repo, "src", str(data / "big.csv"))
    assert tmp_repo.collab("run", str(config)).returncode == 1
    allowed = tmp_repo.collab("run", str(config), "--allow-path", str(data))
    assert allowed.returncode == 0, allowed.stderr
    assert "--allow-path" not in config.read_text()  # never recorded for teammates


def test_in_repository_paths_still_work(tmp_repo):
    (tmp_repo.root / "sub").mkdir()
    run = _datasource_pipeline(tmp_repo, "d.csv").run()
    assert run.statuses == {"CSVDatasource": "executed"}


def test_an_estimator_outside_sklearn_and_the_repository_is_never_imported(tmp_repo):
    with pytest.raises(ConfigError, match="neither in scikit-learn nor in this repository"):
        resolve_estimator("antigravity:fly")
    with pytest.raises(ConfigError, match="not a scikit-learn estimator"):
        resolve_estimator("sklearn.utils:Bunch")
    assert resolve_estimator("sklearn.svm:SVC").__name__ == "SVC"


ANCHOR_BOMB = """a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]
name: bomb
steps: *h
"""


@pytest.mark.parametrize("where", ["pipelines/bomb.yaml", "collab.yaml", ".collab/local.yaml"])
def test_a_yaml_anchor_bomb_is_refused_at_once(tmp_repo, where):
    target = tmp_repo.root / where
    target.parent.mkdir(exist_ok=True)
    target.write_text(ANCHOR_BOMB)
    args = ("run", where) if where.startswith("pipelines") else ("pipelines", "list")
    started = time.monotonic()
    result = tmp_repo.collab(*args)
    assert time.monotonic() - started < 30  # bounded, not ~10^8 nodes (the CLI starts in ~1 s)
    assert result.returncode == 1, result.stderr
    assert "alias" in result.stderr and where.split("/")[-1] in result.stderr
    assert "Traceback" not in result.stderr


def test_parsing_the_anchor_bomb_takes_milliseconds(tmp_path):
    from zenml_collab.config import read_yaml

    path = tmp_path / "bomb.yaml"
    path.write_text(ANCHOR_BOMB)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="alias"):
        read_yaml(path)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("where", ["pipelines/bad.yaml", "collab.yaml", ".collab/local.yaml"])
@pytest.mark.parametrize("content", [b"name: caf\xe9\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00binary"])
def test_binary_or_non_utf8_files_give_a_clear_error_naming_the_file(tmp_repo, where, content):
    target = tmp_repo.root / where
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(content)
    args = ("run", where) if where.startswith("pipelines") else ("pipelines", "list")
    result = tmp_repo.collab(*args)
    assert result.returncode == 1, result.stderr
    assert where.split("/")[-1] in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_an_oversized_config_file_is_refused(tmp_repo):
    (tmp_repo.root / "collab.yaml").write_text("# pad\n" * 300_000)
    result = tmp_repo.collab("pipelines", "list")
    assert result.returncode == 1
    assert "too large" in result.stderr


@pytest.mark.parametrize("url", ["mysql://alice:S3cretPw99", "mysql://alice:S3cretPw99@",
                                 "mysql://alice:S3cretPw99@host:notaport/db",
                                 "postgres://alice:S3cretPw99@h/db"])
def test_a_malformed_db_url_never_echoes_the_password(tmp_repo, url):
    result = tmp_repo.collab("pipelines", "list", env={"COLLAB_DB_URL": url})
    assert result.returncode == 1, result.stderr
    assert "S3cretPw99" not in result.stderr + result.stdout
    assert "COLLAB_DB_URL" in result.stderr


def test_mask_url_hides_passwords_in_every_shape():
    assert mask_url("mysql://alice:pw@h:1/db") == "mysql://alice:***@h:1/db"
    assert mask_url("mysql://alice:p@w@h/db") == "mysql://alice:***@h/db"
    assert mask_url("mysql://alice:pw") == "mysql://***"
    assert mask_url("mysql://h:3306/db") == "mysql://h:3306/db"
    assert "pw" not in mask_url("pw")
    assert os.sep  # (mask_url is pure: no environment involved)
