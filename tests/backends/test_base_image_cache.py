"""The offline base image's rootfs cache keeps what is in use and drops stale builds (each
is ~800 MiB), never a build in progress."""

from __future__ import annotations

import os
import time
from pathlib import Path

from zenml_collab.testing.base_image import STALE_AFTER_S, prune_stale


def _tar(path: Path, age_s: float) -> Path:
    path.write_bytes(b"rootfs")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_stale_rootfs_tars_of_other_dependency_sets_are_pruned(tmp_path: Path) -> None:
    keep = _tar(tmp_path / "current.tar", STALE_AFTER_S * 3)  # old, but the one in use
    stale = _tar(tmp_path / "upgraded-away.tar", STALE_AFTER_S + 60)
    recent = _tar(tmp_path / "other-python.tar", 3600)  # another interpreter's, used today
    building = _tar(tmp_path / ".next.tar.1234.tmp", STALE_AFTER_S * 2)

    assert prune_stale(keep) == [stale]
    assert keep.exists() and recent.exists() and building.exists()
    assert not stale.exists()
