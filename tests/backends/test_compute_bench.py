"""The benchmark's compute section at toy sizes: a fully cached pipeline with vertex steps
launches no job and costs the in-process run's statements; the docker start row is measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.mysql, pytest.mark.gcs, pytest.mark.docker, pytest.mark.slow]


def test_compute_section_a_cached_vertex_pipeline_launches_nothing_and_costs_the_same(
        tmp_path: Path) -> None:
    if not (os.environ.get("COLLAB_TEST_MYSQL_URL") and os.environ.get("COLLAB_TEST_GCS_ENDPOINT")):
        pytest.skip("needs MariaDB and fake-gcs-server (run with scripts/test)")
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--out", str(out), "--workdir",
         str(tmp_path / "work"), "--only", "compute"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_GCE_CHECK": "True"})
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((out / "latest.json").read_text())["figures"]
    inproc, vertex = figures["compute_cached_inproc"], figures["compute_cached_vertex"]
    assert vertex["jobs_created"] == 0 and vertex["google_api_requests"] == 0
    assert vertex["statements_per_run"] == inproc["statements_per_run"]
    assert vertex["round_trips_per_run"] == inproc["round_trips_per_run"]
    assert vertex["gcs_requests_per_run"] == inproc["gcs_requests_per_run"]
    if os.environ.get("DOCKER_HOST"):
        assert figures["compute_docker_start"]["overhead_s"] > 0
        assert figures["compute_inproc_start"]["n"] >= 2
