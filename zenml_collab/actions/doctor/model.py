"""The values doctor passes around: a check, its result, the whole report, and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from zenml_collab.errors import EXIT_CONNECTIVITY, EXIT_PERMISSION, EXIT_USER, CollabError

if TYPE_CHECKING:
    from zenml_collab.actions.doctor.context import DoctorContext

Status = Literal["pass", "warn", "fail", "skip"]
# What kind of problem a failure is; it decides the exit code (DESIGN §9).
Category = Literal["permission", "connectivity", "config"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")

_EXIT = {"permission": EXIT_PERMISSION, "connectivity": EXIT_CONNECTIVITY, "config": EXIT_USER}


class NotApplicable(CollabError):
    """Raised inside a check when it does not apply to this setup; the runner reports skip."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    ``fix`` is set for every non-pass result: the command to run, or the role to ask for and
    the admin's command that grants it. ``auto_fix`` names the safe local fix ``--fix`` may
    apply (``ignore``, ``proxy``, ``schema``). ``blocked`` marks a skip caused by a failed
    dependency: it propagates to the check's own dependents, a plain skip does not.
    """

    id: str
    status: Status
    detail: str
    fix: str | None = None
    category: Category | None = None
    auto_fix: str | None = None
    blocked: bool = False
    title: str = ""
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The stable ``--json`` shape of one check (README: collab doctor)."""
        return {"id": self.id, "title": self.title, "status": self.status,
                "detail": self.detail, "fix": self.fix,
                "duration_ms": round(self.duration_ms, 1)}


def passed(detail: str) -> CheckResult:
    """Shorthand used by the checks; the runner fills in id and title."""
    return CheckResult("", "pass", detail)


def skipped(detail: str) -> CheckResult:
    return CheckResult("", "skip", detail)


def warned(detail: str, fix: str, *, auto_fix: str | None = None) -> CheckResult:
    return CheckResult("", "warn", detail, fix, auto_fix=auto_fix)


def failed(detail: str, fix: str, category: Category | None = None, *,
           auto_fix: str | None = None) -> CheckResult:
    return CheckResult("", "fail", detail, fix, category, auto_fix=auto_fix)


CheckFn = Callable[["DoctorContext"], CheckResult]


@dataclass(frozen=True)
class Check:
    """One diagnosis: ``run(ctx)`` returns a :class:`CheckResult` and does no terminal I/O.

    ``depends_on`` names checks that must not fail first (a failure makes this one ``skip``);
    ``timeout`` bounds the seconds its network calls may take before it is reported as
    failed; ``category`` is the kind of problem a failure is, unless the result says otherwise.
    """

    id: str
    title: str
    run: CheckFn = field(repr=False, compare=False)
    depends_on: tuple[str, ...] = ()
    timeout: float = 5.0
    category: Category = "config"


@dataclass(frozen=True)
class AppliedFix:
    """A local fix ``--fix`` applied (or tried): which check, what it did, whether it worked."""

    check_id: str
    action: str
    ok: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check_id, "action": self.action, "ok": self.ok,
                "message": self.message}


@dataclass(frozen=True)
class DoctorReport:
    """Every result in check order, and the fixes applied before the final run."""

    results: tuple[CheckResult, ...]
    applied: tuple[AppliedFix, ...] = ()

    def get(self, check_id: str) -> CheckResult:
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    def statuses(self) -> dict[str, Status]:
        return {r.id: r.status for r in self.results}

    @property
    def exit_code(self) -> int:
        """0 when nothing failed; else 3 for a permission, 4 for connectivity, 1 otherwise."""
        categories = {r.category or "config" for r in self.results if r.status == "fail"}
        if not categories:
            return 0
        for category in ("permission", "connectivity"):
            if category in categories:
                return _EXIT[category]
        return EXIT_USER

    def to_json(self) -> dict[str, Any]:
        """The ``collab doctor --json`` document (version 1, README: collab doctor)."""
        counts = {s: sum(r.status == s for r in self.results) for s in STATUSES}
        return {"version": 1, "exit_code": self.exit_code, "summary": counts,
                "checks": [r.to_json() for r in self.results],
                "fixes": [a.to_json() for a in self.applied]}
