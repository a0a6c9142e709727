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
