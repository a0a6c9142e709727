"""Run endings the store could not take, kept on the member's disk until it can.

When a long outage makes a run fail, marking it ``failed`` fails too (the store is what is
down). Rather than leave the run ``running`` for the team, the ending is written to
``.collab/outbox/<run id>.json`` and the next command that opens the store delivers it (one
UPDATE per pending run, only while the run is still ``running``). Until then the run shows as
``abandoned`` once its process is gone.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("zenml_collab.metadata.outbox")


def defer(outbox: Path, run_id: str, status: str, error: str | None) -> bool:
    """Keep a run's ending to deliver later; False if even the local disk refused it."""
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        tmp = outbox / f".{run_id}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"run_id": run_id, "status": status, "error": error}),
                       encoding="utf-8")
        os.replace(tmp, outbox / f"{run_id}.json")
        return True
    except OSError as exc:
        log.warning("could not keep the ending of run %s to record later: %s", run_id[:8], exc)
        return False


def deliver(outbox: Path, finish: Callable[[str, str, str | None], None]) -> int:
    """Record every pending ending with ``finish``; returns how many were delivered."""
    try:
        pending = sorted(p for p in outbox.iterdir() if p.suffix == ".json")
    except (FileNotFoundError, NotADirectoryError):
        return 0
    delivered = 0
    for path in pending:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            run_id, status, error = str(data["run_id"]), str(data["status"]), data.get("error")
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing to deliver
            continue
        finish(run_id, status, error if isinstance(error, str) else None)
        path.unlink(missing_ok=True)
        delivered += 1
    return delivered
