"""IAM is eventually consistent: a service account created moments ago is not yet a valid member.

Right after ``iam.serviceAccounts.create`` a ``setIamPolicy`` that names the new account (on a
project, a bucket, a repository, another account) can be refused for a minute or two with HTTP
400 ``INVALID_ARGUMENT`` "Service account <email> does not exist." — see
hashicorp/vault-plugin-secrets-gcp#237 ("googleapi: Error 400: Service account ... does not
exist." on a project ``setIamPolicy`` right after creating it) and googleapis/google-cloud-go#11482
(the same refusal as ``InvalidArgument``). Terraform's google provider retries exactly this in its
IAM read-modify-write (``IamServiceAccountNotFound`` in ``transport/error_retry_predicates.go``:
status 400 and "Service account ... does not exist"), and its docs note that service account
creation is eventually consistent (GoogleCloudPlatform/magic-modules#1408).

The same 400 also means "that account really does not exist" (a typo in ``--member``), which no
wait fixes; so only the accounts the caller just created are waited for (:class:`Propagation`),
any other is refused at once. :func:`write_policy` runs one whole read-modify-write per attempt,
so every retry re-reads the policy and its etag before writing again.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from zenml_collab.errors import CollabError, ConnectivityError
from zenml_collab.google.errors import inspect

T = TypeVar("T")
WINDOW_ENV = "COLLAB_IAM_PROPAGATION_SECONDS"
DEFAULT_WINDOW = 120.0
WAITING = "waiting for the new service account to propagate (IAM is eventually consistent)"
_NOT_FOUND = re.compile(r"Service account (\S+?@\S+?) does not exist")


class IamPropagationError(ConnectivityError):
    """IAM still refused a service account we created as a member after the whole window.

    Transient on Google's side, like a 5xx answered repeatedly (hence a connectivity error,
    exit code 4): the fix is to run the same command again a little later; it resumes.
    """

    def __init__(self, message: str, hint: str | None, account: str, waited: float) -> None:
        super().__init__(message, hint)
        self.account = account
        self.waited = waited


def window_seconds() -> float:
    """How long to wait for a new account: ``COLLAB_IAM_PROPAGATION_SECONDS`` or 120 s."""
    raw = os.environ.get(WINDOW_ENV)
    if not raw:
        return DEFAULT_WINDOW
    try:
        value = float(raw)
    except ValueError:
        raise CollabError(f"{WINDOW_ENV}={raw!r} is not a number of seconds",
                          f"unset {WINDOW_ENV} (default {DEFAULT_WINDOW:.0f}) or set e.g. "
                          "180") from None
    return max(0.0, value)


def seconds(value: float) -> str:
    """``120`` or ``0.3``: a duration as the messages show it."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _chain(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and the errors it was raised from (a classified CollabError keeps the API's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def missing_account(exc: BaseException) -> str | None:
    """The email of the service account Google says "does not exist" in a 400, else None.

    Looks through ``exc`` and what it was raised from, so a caller may pass the raw API error
    or the :class:`CollabError` the classifier made of it.
    """
    for err in _chain(exc):
        if isinstance(err, CollabError):
            continue
        info = inspect(err)
        if info.status != 400:
            continue
        found = _NOT_FOUND.search(info.message)
        if found:
            return found.group(1).rstrip(".").lower()
    return None


def is_member_not_propagated(exc: BaseException,
                             accounts: Iterable[str] | None = None) -> bool:
    """Whether ``exc`` is IAM not knowing a service account yet (400 "... does not exist").

    With ``accounts``, only those emails count (the ones just created); without, any.
    """
    email = missing_account(exc)
    if email is None:
        return False
    return accounts is None or email in {a.lower() for a in accounts}


class Propagation:
    """The service accounts a command just created, and how to wait until IAM knows them.

    One instance serves a whole command: it tells ``on_wait(email, window)`` once per account
    (the first time a write has to wait for it), however many policies name that account.
    ``window`` bounds each write's wait (default :func:`window_seconds`); ``rerun`` is the
    command the fix names.
    """

    def __init__(self, accounts: Iterable[str], *,
                 on_wait: Callable[[str, float], None] | None = None,
                 window: float | None = None,
                 rerun: str = "collab bootstrap",
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = frozenset(a.lower() for a in accounts)
        self.window = window_seconds() if window is None else window
        self.rerun = rerun
        self._on_wait = on_wait
        self._sleep, self._clock = sleep, clock
        self._told: set[str] = set()

    def delays(self) -> Iterable[float]:
        """Backoff between attempts: 1 s doubling to 10 s (scaled down for a short window)."""
        delay, cap = min(1.0, self.window / 30), min(10.0, max(self.window / 4, 0.01))
        while True:
            yield max(delay, 0.001)
            delay = min(cap, delay * 2)

    def write(self, attempt: Callable[[], T], what: str) -> T:
        """Run ``attempt`` (one whole read-modify-write of the IAM policy of ``what``).

        While Google refuses it because one of :attr:`accounts` is not known yet, wait and run
        it again (so it re-reads the policy and its etag) with backoff, for at most
        :attr:`window` from the first refusal; then :class:`IamPropagationError`. Any other
        error, or the same refusal for an account that was not just created, is raised at once.
        """
        started: float | None = None
        delays = iter(self.delays())
        while True:
            try:
                return attempt()
            except Exception as exc:
                email = missing_account(exc)
                if email is None or email not in self.accounts:
                    raise
                now = self._clock()
                started = now if started is None else started
                waited = now - started
                if waited >= self.window:
                    raise self._timeout(email, waited, what) from exc
                self._tell(email)
                self._sleep(min(next(delays), self.window - waited))

    def _tell(self, email: str) -> None:
        if email not in self._told:
            self._told.add(email)
            if self._on_wait is not None:
                self._on_wait(email, self.window)

    def _timeout(self, email: str, waited: float, what: str) -> IamPropagationError:
        return IamPropagationError(
            f"IAM has not seen the new service account {email} after {seconds(self.window)} s "
            f"(updating the IAM policy of {what}); Google is eventually consistent and usually "
            "catches up within a minute or two",
            f"re-run `{self.rerun}` in a minute; it resumes", email, waited)


def write_policy(attempt: Callable[[], T], propagation: Propagation | None, what: str) -> T:
    """``propagation.write(attempt, what)`` (:meth:`Propagation.write`), or just ``attempt()``
    when the command created no service account."""
    return attempt() if propagation is None else propagation.write(attempt, what)
