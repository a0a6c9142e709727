"""`collab run` of a cached pipeline imports only what the cached path needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import distance_steps as steps
import pytest

from zenml_collab import Repository
from zenml_collab.testing.repos import TmpRepo

HERE = Path(__file__).parent
# Libraries a cached run never needs; each costs tens of milliseconds to import.
HEAVY = ("rich", "pandas", "numpy", "pyarrow", "sklearn", "alembic", "google.cloud.storage",
         "googleapiclient", "docker")

CHILD = '''
import json, sys
from zenml_collab.cli.main import main
try:
    main(["run", sys.argv[1]])
except SystemExit as exc:
    assert not exc.code, exc.code
print("IMPORTED " + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
'''


def test_collab_run_of_a_cached_pipeline_imports_no_rich_dataframe_or_google_library(
        tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    steps.chain("quick", 3).run(Repository(tmp_repo.root))
    config = next((tmp_repo.root / "pipelines").glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(heavy=HEAVY), str(config)], cwd=tmp_repo.root,
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(HERE), os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "s02: cached (cache hit)" in done.stdout
    imported = json.loads(done.stdout.split("IMPORTED ", 1)[1])
    assert imported == []
