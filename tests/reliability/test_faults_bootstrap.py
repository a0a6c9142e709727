"""Fault matrix, the admin's side: `collab bootstrap` against Google's eventual consistency.

Right after bootstrap creates the runner account (``--compute vertex``), IAM refuses it as a
policy member (400 "Service account ... does not exist.") for a minute or two. The fake does the
same once asked (``fake.delay_iam_propagation``); bootstrap runs in-process through the CLI's own
``main`` as the project's owner, with the test MariaDB behind the fake instance (the last step
GRANTs the team database).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reliability.matrix import fault

# tests/bootstrap/conftest.py's team; imported lazily there so that
# `python tests/reliability/matrix.py` can collect the rows without the test tree on sys.path.
PROJECT, REGION = "proj-a", "europe-west1"
ADMIN = f"admin@{PROJECT}.iam.gserviceaccount.com"
RUNNER_EMAIL = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
WAITING = "waiting for the new service account to propagate (IAM is eventually consistent)"
ARGS = ("bootstrap", "--project", PROJECT, "--region", REGION, "--member", "user:ana@example.com",
        "--member", f"serviceAccount:{ADMIN}", "--compute", "vertex", "--yes")


@pytest.fixture
def bootstrap(fake_gcp_mysql: Any, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Callable[[], tuple[int, str, str]]:
    """``bootstrap()``: `collab bootstrap --compute vertex --yes` by the project's owner in a
    fresh git repo against the fake: (exit code, stdout, stderr), line wrapping undone."""
    from tests.bootstrap.conftest import drop_leftover_grant_admin
    from zenml_collab.testing.cli import run_cli
    from zenml_collab.testing.repos import make_git_repo

    fake = fake_gcp_mysql
    for name, value in {**fake.env, "COLLAB_GCP_RETRY_INITIAL": "0.01",
                        "COLLAB_GCP_POLL_INTERVAL": "0.01",
                        "CLOUDSDK_CONFIG": str(fake.workdir / "no-gcloud")}.items():
        monkeypatch.setenv(name, value)
    fake.add_project(PROJECT, owner=ADMIN)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake.add_member(ADMIN)))
    drop_leftover_grant_admin()
    make_git_repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")

    def run() -> tuple[int, str, str]:
        done = run_cli(*ARGS)
        return done.code, " ".join(done.stdout.split()), " ".join(done.stderr.split())

    return run


def _refused_writes(fake: Any, since: int = 0) -> list[tuple[str, int]]:
    return [(r.path, r.status) for r in fake.requests[since:]
            if r.method_id and r.method_id.endswith("setIamPolicy")]


@pytest.mark.mysql
@fault("bootstrap.iam-propagation",
       fault="`collab bootstrap --compute vertex`: IAM refuses the runner account it just "
             "created as a policy member (400 \"Service account ... does not exist.\") for a while",
       sees="`waiting for the new service account to propagate (IAM is eventually "
            "consistent); up to 120 s` once; the refused policy write is retried (re-read, "
            "re-merged) with backoff, and bootstrap completes",
       exit_code=0, kept="every resource and binding, in one run")
def test_bootstrap_waits_out_iam_propagation_in_one_run(
    bootstrap: Callable[[], tuple[int, str, str]], fake_gcp_mysql: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLLAB_IAM_PROPAGATION_SECONDS", "20")
    fake_gcp_mysql.delay_iam_propagation(writes=3)
    code, out, err = bootstrap()
    assert code == 0, err
    assert out.count(WAITING) == 1 and f"{WAITING}; up to 20 s" in out
    statuses = [s for _, s in _refused_writes(fake_gcp_mysql)]
    assert statuses.count(400) == 3 and statuses[:4] == [400, 400, 400, 200]
    runner = f"serviceAccount:{RUNNER_EMAIL}"
    assert runner in fake_gcp_mysql.world.projects[PROJECT].policy.bindings[
        "roles/cloudsql.client"]


@pytest.mark.mysql
@fault("bootstrap.iam-propagation-timeout",
       fault="`collab bootstrap --compute vertex`: IAM still refuses the new runner account as "
             "a member after the whole wait (COLLAB_IAM_PROPAGATION_SECONDS, default 120)",
       sees="error: IAM has not seen the new service account ... after 120 s; hint: re-run "
            "`collab bootstrap` in a minute; it resumes (no traceback)",
       exit_code=4, kept="what was created (runner account, repository, instance, database); "
                         "the re-run creates nothing twice and adds the missing bindings")
def test_iam_propagation_past_the_window_is_named_and_a_rerun_resumes(
    bootstrap: Callable[[], tuple[int, str, str]], fake_gcp_mysql: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = fake_gcp_mysql
    monkeypatch.setenv("COLLAB_IAM_PROPAGATION_SECONDS", "0.3")
    delay = fake.delay_iam_propagation(writes=10_000)
    code, out, err = bootstrap()
    assert code == 4, err
    assert f"error: IAM has not seen the new service account {RUNNER_EMAIL} after 0.3 s" in err
    assert "hint: re-run `collab bootstrap` in a minute; it resumes" in err
    assert "Traceback" not in out + err and "internal error" not in err
    assert out.count(WAITING) == 1
    assert {s for _, s in _refused_writes(fake)} == {400} and len(_refused_writes(fake)) >= 2

    delay.settle()  # IAM caught up
    before = len(fake.requests)
    code, out, err = bootstrap()
    assert code == 0, err
    assert WAITING not in out and 400 not in {s for _, s in _refused_writes(fake, before)}
    made_again = {r.method_id for r in fake.requests[before:]} & {
        "iam.projects.serviceAccounts.create",
        "artifactregistry.projects.locations.repositories.create",
        "sql.instances.insert", "sql.databases.insert"}
    assert made_again == set()  # kept from the first run (the bucket and grants come now)
    assert "everything is in place" not in out  # it did have bindings left to add
    on_runner = fake.vertex.sa_policies[RUNNER_EMAIL].bindings["roles/iam.serviceAccountUser"]
    assert f"serviceAccount:{ADMIN}" in on_runner
