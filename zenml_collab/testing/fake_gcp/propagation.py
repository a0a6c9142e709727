"""IAM's eventual consistency, opt-in: a new service account is not yet a valid policy member.

Real IAM refuses a ``setIamPolicy`` naming a service account created moments ago with HTTP 400
``INVALID_ARGUMENT`` "Service account <email> does not exist." for up to a minute or two (see
:mod:`zenml_collab.google.propagation`). The fake does the same on every policy it serves
(project, bucket, Artifact Registry repository, service account) once a test asks for it::

    delay = fake.delay_iam_propagation(writes=2)   # each new account: its first 2 writes fail
    delay = fake.delay_iam_propagation(seconds=3)  # ... or while it is younger than 3 s
    delay.settle()                                  # IAM caught up: every account is known

Off by default (``writes=0, seconds=0``). Counting writes is deterministic; ``seconds`` is the
real behaviour. Only accounts created through the fake's IAM API are delayed, and only while
they are new to the policy being written (a member already bound was accepted before).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from zenml_collab.testing.fake_gcp import errors

_PREFIX = "serviceAccount:"


@dataclass
class PropagationDelay:
    """Which new service accounts IAM does not know yet as members (state of one fake)."""

    writes: int = 0
    seconds: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    created: dict[str, float] = field(default_factory=dict)  # email -> clock() at creation
    refusals: dict[str, int] = field(default_factory=dict)  # email -> writes refused so far
    settled: set[str] = field(default_factory=set)

    @property
    def enabled(self) -> bool:
        return self.writes > 0 or self.seconds > 0

    def account_created(self, email: str) -> None:
        """``iam.projects.serviceAccounts.create`` made ``email`` (the clock starts now)."""
        self.created[email.lower()] = self.clock()
        self.refusals.pop(email.lower(), None)
        self.settled.discard(email.lower())

    def settle(self) -> None:
        """IAM caught up: every account created so far is a valid member from now on."""
        self.settled.update(self.created)

    def pending(self, email: str) -> bool:
        """Whether a policy write naming ``email`` is refused now."""
        email = email.lower()
        if not self.enabled or email not in self.created or email in self.settled:
            return False
        young = self.clock() - self.created[email] < self.seconds
        return young or self.refusals.get(email, 0) < self.writes

    def check(self, bindings: Iterable[dict[str, Any]], current: dict[str, list[str]], *,
              storage: bool = False) -> None:
        """Refuse a write whose ``bindings`` add a pending account to ``current``.

        Raises Google's 400 (Cloud Storage's JSON API shape with ``storage``), counting one
        refusal for the account it names.
        """
        bound = {m.lower() for members in current.values() for m in members}
        for binding in bindings:
            for member in binding.get("members", []) or []:
                member = str(member)
                if not member.startswith(_PREFIX) or member.lower() in bound:
                    continue
                email = member.removeprefix(_PREFIX)
                if self.pending(email):
                    self.refusals[email.lower()] = self.refusals.get(email.lower(), 0) + 1
                    raise not_propagated(email, storage=storage)


def not_propagated(email: str, *, storage: bool = False) -> errors.GoogleError:
    """The 400 IAM answers for a member it does not know (yet)."""
    message = f"Service account {email} does not exist."
    if storage:  # the JSON API's shape: an ``errors`` list with a reason, no gRPC status
        return errors.error(400, message, "invalid")
    return errors.error(400, message, status="INVALID_ARGUMENT")
