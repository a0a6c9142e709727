"""Every benchmark section runs at toy sizes and writes its figures; no timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_SECTIONS = ["startup", "chain", "big", "hashing", "lookup"]


def run_bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None
              ) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--out", str(out),
         "--workdir", str(tmp_path / "work"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**(os.environ if env is None else env), "NO_GCE_CHECK": "True"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((out / "latest.json").read_text())


@pytest.mark.slow
def test_each_local_section_produces_its_figures_and_both_result_files(tmp_path: Path) -> None:
    done, results = run_bench(tmp_path, "--only", ",".join(LOCAL_SECTIONS))
    figures = results["figures"]
    expected = {"python_startup", "import", "help", "chain_cold", "chain_cached",
                "chain_cached_process", "big_cold", "big_np_save", "big_cached", "hash_files",
                "lookup_hit_10", "lookup_hit_100", "lookup_explain_100", "lookup_rerun_100"}
    assert expected <= set(figures)
    for name in expected:
        fig = figures[name]
        assert fig["n"] == len(fig["samples"]) >= 1
        assert fig["min"] <= fig["median"] <= fig["max"]
        assert fig["peak_rss_mb"] > 0
    assert figures["big_cold"]["peak_rss_delta_mb"] is not None
    assert {"machine", "python", "date", "targets"} <= set(results)
    assert results["skipped"] == {}
    markdown = (tmp_path / "results" / "latest.md").read_text()
    assert markdown.count("\n| ") >= len(expected)
    assert "20 trivial steps" not in done.stdout  # the tiny preset really ran 3 steps
    assert "3 trivial steps, cached re-run" in done.stdout


def test_targets_are_judged_only_from_figures_that_were_measured(tmp_path: Path) -> None:
    _, results = run_bench(tmp_path, "--only", "hashing")
    statuses = {t["name"]: t["status"] for t in results["targets"]}
    assert statuses["hashing"] in {"met", "MISSED"}
    assert statuses["cached_step"] == "not measured"


@pytest.mark.mysql
@pytest.mark.gcs
@pytest.mark.slow
def test_shared_section_counts_statements_and_requests_per_cached_step(tmp_path: Path) -> None:
    if not (os.environ.get("COLLAB_TEST_MYSQL_URL") and os.environ.get("COLLAB_TEST_GCS_ENDPOINT")):
        pytest.skip("needs MariaDB and fake-gcs-server (run with scripts/test)")
    _, results = run_bench(tmp_path, "--only", "shared")
    cached = results["figures"]["mysql_gcs_cached"]
    # A cached run's statements do not grow with its steps (batched lookup and insert).
    assert cached["statements_per_step"] == 0
    assert 1 <= cached["statements_per_run"] <= 10
    assert cached["round_trips_per_run"] >= 1
    # A hit still checks that its artifacts exist: all of them in one batch request per run.
    assert cached["gcs_requests_per_step"] == 0
    assert cached["gcs_requests_per_run"] >= 1
    assert "mysql_gcs_cached_process" in results["figures"]


def test_team_section_without_mariadb_times_the_help_and_notes_why_the_commands_did_not_run(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLLAB_TEST_MYSQL_URL"}
    _, results = run_bench(tmp_path, "--only", "team", env=env)
    assert {"doctor_help", "join_help"} <= set(results["figures"])
    assert "doctor" not in results["figures"]
    assert any("MariaDB" in note and "COLLAB_TEST_MYSQL_URL" in note for note in results["notes"])
    statuses = {t["name"]: t["status"] for t in results["targets"]}
    assert statuses["doctor"] == "not measured"


@pytest.mark.mysql
@pytest.mark.slow
def test_team_section_runs_bootstrap_join_and_doctor_on_the_fakes(tmp_path: Path) -> None:
    if not os.environ.get("COLLAB_TEST_MYSQL_URL"):
        pytest.skip("needs MariaDB (run with scripts/test)")
    _, results = run_bench(tmp_path, "--only", "team")
    assert results["skipped"] == {} and results["notes"] == []
    figures = results["figures"]
    assert {"bootstrap_first", "bootstrap_rerun", "join_first", "join_next_member", "join_rerun",
            "doctor"} <= set(figures)
    assert figures["bootstrap_first"]["mutating_requests"] > 0
    assert figures["bootstrap_rerun"]["mutating_requests"] == 0
    assert figures["bootstrap_rerun"]["api_requests"] > 0
    doctor = figures["doctor"]
    assert doctor["checks_passed"] >= 1
    assert doctor["checks_passed"] + doctor["checks_skipped"] == doctor["checks"]
    assert doctor["api_requests"] >= 1
    for name in ("bootstrap_rerun", "join_rerun", "doctor"):
        assert figures[name]["n"] == len(figures[name]["samples"]) >= 1
    statuses = {t["name"]: t["status"] for t in results["targets"]}
    assert statuses["doctor"] in {"met", "MISSED"}
    assert statuses["bootstrap_rerun_writes"] == "met"
