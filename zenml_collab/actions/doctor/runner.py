"""Run checks concurrently, honouring dependencies and per-check timeouts.

A check starts once all its dependencies have a result. If one of them failed (or was skipped
because of a failure), the check is skipped with that reason and never runs. Each running check
has its own deadline: one that does not answer in time is reported as failed and abandoned, so
one hanging service cannot hang doctor.

Why daemon threads and not ``ThreadPoolExecutor``: the executor's workers are joined when the
interpreter exits, so an abandoned check stuck in a network call would still hold the process
(and the member's terminal) until the call gave up. A daemon thread is simply dropped.
"""

from __future__ import annotations

import graphlib
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.model import Category, Check, CheckResult, NotApplicable
from zenml_collab.errors import EXIT_CONNECTIVITY, EXIT_PERMISSION, CollabError

MAX_WORKERS = 8


def selection(checks: Sequence[Check], wanted: Iterable[str] | None) -> list[Check]:
    """``wanted`` plus everything they depend on, in the catalogue's order.

    Raises :class:`CollabError` for an unknown id (listing the known ones) or a cycle.
    """
    by_id = {c.id: c for c in checks}
    for check in checks:
        for dep in check.depends_on:
            if dep not in by_id:
                raise CollabError(f"check {check.id} depends on unknown check {dep}")
    try:
        tuple(graphlib.TopologicalSorter({c.id: c.depends_on for c in checks}).static_order())
    except graphlib.CycleError as exc:
        raise CollabError(f"the doctor checks depend on each other in a cycle: {exc.args[1]}") \
            from None
    if wanted is None:
        return list(checks)
    keep: set[str] = set()
    todo = list(wanted)
    while todo:
        check_id = todo.pop()
        if check_id not in by_id:
            prefix = [c for c in by_id if c.startswith(check_id + ".")]
            if not prefix:
                raise CollabError(f"unknown check {check_id!r}",
                                  "known checks: " + ", ".join(by_id))
            todo.extend(prefix)
            continue
        if check_id not in keep:
            keep.add(check_id)
            todo.extend(by_id[check_id].depends_on)
    return [c for c in checks if c.id in keep]


def _category_of(exc: CollabError) -> Category:
    if exc.exit_code == EXIT_PERMISSION:
        return "permission"
    if exc.exit_code == EXIT_CONNECTIVITY:
        return "connectivity"
    return "config"


def run_one(check: Check, ctx: DoctorContext) -> CheckResult:
    """Run ``check``; an error it raises becomes its ``fail`` result (never escapes)."""
    start = time.perf_counter()
    try:
        result = check.run(ctx)
    except NotApplicable as exc:
        result = CheckResult(check.id, "skip", exc.message)
    except CollabError as exc:
        result = CheckResult(check.id, "fail", exc.message,
                             exc.hint or "see the message above", _category_of(exc))
    except Exception as exc:  # a bug in a check must not hide the other checks' answers
        result = CheckResult(check.id, "fail", f"the check crashed: {type(exc).__name__}: {exc}",
                             "report this as a bug in zenml-collab (re-run with COLLAB_DEBUG=1 "
                             "for the details)")
    category = result.category or (check.category if result.status == "fail" else None)
    return replace(result, id=check.id, title=check.title, category=category,
                   duration_ms=(time.perf_counter() - start) * 1000)


def run_checks(checks: Sequence[Check], ctx: DoctorContext, *,
               only: Iterable[str] | None = None,
               max_workers: int = MAX_WORKERS) -> tuple[CheckResult, ...]:
    """Run ``checks`` (or ``only`` these ids and their dependencies); results in catalogue order."""
    chosen = selection(checks, only)
    results: dict[str, CheckResult] = {}
    waiting = list(chosen)
    running: dict[str, tuple[float, float]] = {}  # id -> (deadline, start)
    done: queue.Queue[CheckResult] = queue.Queue()

    def worker(check: Check) -> None:
        done.put(run_one(check, ctx))

    while waiting or running:
        for check in list(waiting):
            if len(running) >= max_workers:
                break
            if any(dep not in results for dep in check.depends_on):
                continue
            waiting.remove(check)
            blocker = next((results[d] for d in check.depends_on
                            if results[d].status == "fail" or results[d].blocked), None)
            if blocker is not None:
                # Name the root cause, not the nearest skipped link of the chain.
                detail = (f"not run: {blocker.id} failed" if blocker.status == "fail"
                          else blocker.detail)
                results[check.id] = CheckResult(check.id, "skip", detail, blocked=True,
                                                title=check.title)
                continue
            now = time.monotonic()
            running[check.id] = (now + check.timeout, now)
            threading.Thread(target=worker, args=(check,), name=f"doctor-{check.id}",
                             daemon=True).start()
        if not running:
            continue  # everything startable was skipped; look at the waiting list again
        wait = max(0.0, min(deadline for deadline, _ in running.values()) - time.monotonic())
        try:
            result = done.get(timeout=wait)
        except queue.Empty:
            result = None
        if result is not None and result.id in running:
            running.pop(result.id)
            results[result.id] = result
        now = time.monotonic()
        for check_id, (deadline, started) in list(running.items()):
            if now >= deadline:
                running.pop(check_id)
                check = next(c for c in chosen if c.id == check_id)
                results[check_id] = CheckResult(
                    check_id, "fail",
                    f"no answer within {check.timeout:g} s: the service it talks to hangs",
                    "check your network connection and the service's status, then re-run "
                    "`collab doctor`", "connectivity", title=check.title,
                    duration_ms=(now - started) * 1000)
    return tuple(results[c.id] for c in chosen)
