"""Fixtures of the distance tests: MariaDB and fake-gcs-server behind latency relays."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from distance_relays import Distance

from zenml_collab.testing.latency import LatencyRelay, WaveClock

HERE = Path(__file__).parent
DELAY_MS = 3


@pytest.fixture
def distance(mysql_url: Any, gcs_endpoint: str, gcs_bucket: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Distance]:
    """Both shared stores a few milliseconds away; ``STORAGE_EMULATOR_HOST`` is the relay."""
    gcs = urlsplit(gcs_endpoint)
    clock = WaveClock()
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))
    with (LatencyRelay((mysql_url.host, mysql_url.port), delay_ms=DELAY_MS, handshake_rtts=0,
                       clock=clock) as db,
          LatencyRelay((gcs.hostname or "127.0.0.1", gcs.port or 80), delay_ms=DELAY_MS,
                       handshake_rtts=0, clock=clock) as store):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{store.port}")
        yield Distance(db, store, clock, mysql_url.set(host="127.0.0.1", port=db.port),
                       gcs_bucket, gcs_endpoint)
