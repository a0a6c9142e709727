"""`collab doctor`: find what stops a member's setup from working, and say how to fix it.

Independent checks run concurrently (see :mod:`.runner`); each reports ``pass``, ``warn``,
``fail`` or ``skip`` with a one-line detail and, for every non-pass, a concrete fix. One module
per area: :mod:`.repo_checks`, :mod:`.google` (credentials, project, APIs, IAM),
:mod:`.cloudsql`, :mod:`.database` (proxy, port, query, schema), :mod:`.bucket`,
:mod:`.environment`. ``--fix`` applies only the safe local fixes of :mod:`.fixes`.

>>> report = run_doctor(lambda: DoctorContext(Path.cwd()))  # doctest: +SKIP
>>> report.exit_code                                        # doctest: +SKIP
0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from zenml_collab.actions.doctor import (
    bucket,
    cloudsql,
    compute,
    database,
    environment,
    google,
    repo_checks,
)
from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.fixes import apply_fix
from zenml_collab.actions.doctor.model import (
    AppliedFix,
    Check,
    CheckResult,
    DoctorReport,
    NotApplicable,
    Status,
)
from zenml_collab.actions.doctor.runner import run_checks, selection

__all__ = [
    "ALL_CHECKS",
    "COMPUTE_CHECKS",
    "AppliedFix",
    "Check",
    "CheckResult",
    "DoctorContext",
    "DoctorReport",
    "NotApplicable",
    "Status",
    "run_doctor",
    "selection",
]

_BY_ID = {c.id: c for module in (repo_checks, google, cloudsql, database, bucket, environment)
          for c in module.CHECKS}
# Report order: the order a member would fix things in (local first, then Google, then data).
ORDER = ("repo.git", "repo.config", "repo.ignored", "repo.secrets",
         "credentials.found", "credentials.token", "credentials.clock",
         "gcp.project", "gcp.api.sqladmin", "gcp.api.storage", "iam.project",
         "sql.instance", "sql.iam_auth", "sql.user",
         "db.proxy", "db.port", "db.query", "db.schema",
         "bucket.exists", "bucket.security", "iam.bucket", "bucket.probe",
         "env.packages")
ALL_CHECKS: tuple[Check, ...] = tuple(_BY_ID[i] for i in ORDER)
# Run besides ALL_CHECKS when a step can go to Vertex AI (see :mod:`.compute`).
COMPUTE_CHECKS: tuple[Check, ...] = compute.CHECKS
MAX_FIX_ROUNDS = 3  # a fix can unblock a check whose own fix is then possible (proxy, schema)


def run_doctor(make_context: Callable[[], DoctorContext], *, only: Iterable[str] | None = None,
               fix: bool = False, checks: Sequence[Check] | None = None) -> DoctorReport:
    """Run the checks (``only`` these ids and what they need); with ``fix``, apply the safe
    local fixes and run again, until nothing new is fixable.

    ``make_context`` builds a fresh :class:`DoctorContext` per round: after a fix, answers
    remembered in the old one (proxy status, schema revision) are stale.
    """
    wanted = list(only) if only is not None else None
    with make_context() as ctx:
        if checks is None:  # the compute checks only where a step can go to Vertex AI
            checks = ALL_CHECKS + (COMPUTE_CHECKS if compute.uses_vertex(ctx) else ())
        results = run_checks(checks, ctx, only=wanted)
    applied: list[AppliedFix] = []
    tried: set[tuple[str, str]] = set()
    for _ in range(MAX_FIX_ROUNDS if fix else 0):
        todo = [r for r in results if r.status in ("fail", "warn") and r.auto_fix
                and (r.id, r.auto_fix) not in tried]
        if not todo:
            break
        with make_context() as ctx:
            for result in todo:
                tried.add((result.id, result.auto_fix or ""))
                applied.append(apply_fix(result, ctx))
        with make_context() as ctx:
            results = run_checks(checks, ctx, only=wanted)
    return DoctorReport(results, tuple(applied))
