"""Is a ``running`` run still running? Host + PID + a heartbeat lease, and the heartbeat itself.

A run records the host and PID of its process and refreshes ``heartbeat_at`` every
:data:`HEARTBEAT_S` from a background thread (its own pooled connection, never the run's held
one). A ``running`` run is *abandoned* when its process is gone: on this host, its PID is not
alive; anywhere, its lease (:data:`LEASE_S` since the last heartbeat) has expired.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

log = logging.getLogger("zenml_collab.metadata")

HEARTBEAT_S = 30.0
LEASE_S = 300.0  # ten missed heartbeats: a member's laptop asleep for 5 minutes loses its run
HOST_MAX = 200


def this_host() -> str:
    return socket.gethostname()[:HOST_MAX]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: keep it running)
    return True


def is_abandoned(*, status: str, hostname: str | None, pid: int | None,
                 heartbeat_at: datetime | None, started_at: datetime, now: datetime,
                 host: str | None = None, lease_s: float = LEASE_S) -> bool:
    """Whether a run recorded with these values has lost its process."""
    if status != "running":
        return False
    same_host = hostname is not None and hostname == (host or this_host())
    if pid is not None and same_host and not pid_alive(pid):
        return True
    last = heartbeat_at or started_at
    return now - last > timedelta(seconds=lease_s)


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on a daemon thread until :meth:`stop`."""

    def __init__(self, beat: Callable[[], None], interval: float = HEARTBEAT_S) -> None:
        self._beat = beat
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="run-heartbeat")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # a missed beat only shortens the lease; never fail a run
                log.debug("run heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=1.0)  # a daemon: a beat stuck on a dead server dies with us


class RunLeases:
    """The heartbeats of a store's running runs, and the ending of a run the store could not
    take (kept in the outbox for the next command): shared by both metadata stores."""

    #: Where run endings wait when the store cannot take them (see outbox.py); the repository
    #: sets it to .collab/outbox, and opening the full store delivers what waits there.
    outbox_dir: Path | None = None

    _run_leases: dict[str, Heartbeat]

    def _leases(self) -> dict[str, Heartbeat]:
        if not hasattr(self, "_run_leases"):
            self._run_leases = {}  # per store, created on first use (no __init__ to chain)
        return self._run_leases

    def _hold_lease(self, run_id: str, beat: Callable[[], None]) -> None:
        self._leases()[run_id] = Heartbeat(beat)

    def _release_lease(self, run_id: str) -> None:
        heartbeat = self._leases().pop(run_id, None)
        if heartbeat is not None:
            heartbeat.stop()

    def _release_all(self) -> None:
        for run_id in list(self._leases()):
            self._release_lease(run_id)

    def defer_finish(self, run_id: str, status: str, error: str | None = None) -> bool:
        """Keep a run's ending on the local disk to record when the store is back."""
        from zenml_collab.core.metadata import outbox

        self._release_lease(run_id)
        return self.outbox_dir is not None and outbox.defer(self.outbox_dir, run_id, status,
                                                            error)
