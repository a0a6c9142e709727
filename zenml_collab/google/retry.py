"""The one retry policy for Google API calls: 429 and 5xx (and dropped connections) are retried
with bounded, jittered exponential backoff; everything else is raised at once.

Each library has its own retry defaults (googleapiclient none, GAPIC per method, storage per
idempotency); we switch those off and wrap every call with :func:`call_with_retry` so behaviour
and test speed are the same whichever API a call goes to.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``initial * 2**n`` (capped at ``maximum``), jittered."""

    attempts: int = 6
    initial: float = 0.5
    maximum: float = 16.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * (2 ** attempt))
        return base * (0.5 + random.random() / 2)


def default_policy() -> RetryPolicy:
    """The default policy; ``COLLAB_GCP_RETRY_INITIAL`` (seconds) shortens it for tests."""
    initial = os.environ.get("COLLAB_GCP_RETRY_INITIAL")
    return RetryPolicy(initial=float(initial)) if initial else RetryPolicy()


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a Google client exception, if it carries one."""
    resp = getattr(exc, "resp", None)  # googleapiclient.errors.HttpError
    if resp is not None and getattr(resp, "status", None) is not None:
        return int(resp.status)
    code = getattr(exc, "code", None)  # google.api_core.exceptions.GoogleAPICallError
    if isinstance(code, int):
        return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: 429/5xx, or a connection that broke."""
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    return is_connection_error(exc)


def is_connection_error(exc: BaseException) -> bool:
    """A network-level failure (refused, reset, dropped, timed out) of any of the libraries."""
    import google.auth.exceptions

    if isinstance(exc, ConnectionError | TimeoutError | google.auth.exceptions.TransportError):
        return True
    try:
        import requests

        if isinstance(exc, requests.ConnectionError | requests.Timeout):
            return True
    except ImportError:  # pragma: no cover - requests comes with google-auth
        pass
    try:
        import aiohttp  # the Cloud SQL connector's HTTP client

        if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ServerTimeoutError):
            return True
    except ImportError:  # pragma: no cover - the connector brings aiohttp
        pass
    import httplib2

    if isinstance(exc, httplib2.HttpLib2Error):
        return True
    import http.client

    return isinstance(exc, http.client.HTTPException | OSError) and status_of(exc) is None


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy | None = None) -> T:
    """Run ``fn``; retry transient failures per ``policy``; re-raise the last one."""
    policy = policy or default_policy()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= policy.attempts or not is_transient(exc):
                raise
            policy.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover
