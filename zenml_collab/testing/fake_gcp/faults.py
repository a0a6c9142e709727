"""Fault injection per route: error statuses, latency, dropped connections, expired tokens."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    """One injected fault.

    ``pattern`` is a glob matched against the method id (``sql.instances.insert``), the raw path
    (``/v1/projects/*/instances``) and ``"METHOD /path"``. ``times`` is how many matching
    requests it hits (None: every one).
    """

    pattern: str
    status: int | None = None
    times: int | None = 1
    latency: float = 0.0
    drop: bool = False
    expire_token: bool = False
    hits: int = 0

    def matches(self, method_key: str, http_method: str, path: str) -> bool:
        return any(
            fnmatch.fnmatchcase(candidate, self.pattern)
            for candidate in (method_key, path, f"{http_method} {path}")
        )


class FaultTable:
    """The faults of one fake; ``take`` consumes one hit of the first matching fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method_key: str, http_method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if fault.matches(method_key, http_method, path):
                    fault.hits += 1
                    return fault
        return None
