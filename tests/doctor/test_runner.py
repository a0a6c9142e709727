"""The doctor's runner and report, with small checks of our own (no services needed)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from zenml_collab.actions.doctor import ALL_CHECKS, DoctorContext, DoctorReport, run_doctor
from zenml_collab.actions.doctor.model import Check, CheckResult, NotApplicable, failed, passed
from zenml_collab.actions.doctor.runner import run_checks, selection
from zenml_collab.errors import CollabError, ConnectivityError, PermissionDeniedError


def ctx(tmp_path: Path) -> DoctorContext:
    return DoctorContext(tmp_path)


def test_a_failed_dependency_skips_its_dependents_and_names_the_root_cause(
    tmp_path: Path,
) -> None:
    ran: list[str] = []

    def record(result: CheckResult, name: str) -> Check:
        return Check(name, name, lambda c: ran.append(name) or result)

    checks = [record(failed("broken", "repair it"), "a"),
              Check("b", "b", lambda c: ran.append("b") or passed("ok"), ("a",)),
              Check("c", "c", lambda c: ran.append("c") or passed("ok"), ("b",)),
              record(passed("fine"), "d")]
    results = {r.id: r for r in run_checks(checks, ctx(tmp_path))}
    assert sorted(ran) == ["a", "d"]
    assert (results["b"].status, results["b"].detail) == ("skip", "not run: a failed")
    assert (results["c"].status, results["c"].detail) == ("skip", "not run: a failed")
    assert results["d"].status == "pass"


def test_a_check_that_does_not_apply_skips_without_blocking_its_dependents(
    tmp_path: Path,
) -> None:
    def not_here(c: DoctorContext) -> CheckResult:
        raise NotApplicable("connector mode")

    checks = [Check("a", "a", not_here), Check("b", "b", lambda c: passed("ran"), ("a",))]
    results = {r.id: r for r in run_checks(checks, ctx(tmp_path))}
    assert (results["a"].status, results["a"].detail) == ("skip", "connector mode")
    assert results["b"].status == "pass"


def test_a_hanging_check_times_out_alone_and_the_others_finish(tmp_path: Path) -> None:
    release = threading.Event()

    def hang(c: DoctorContext) -> CheckResult:
        release.wait(30)
        return passed("late")

    checks = [Check("slow", "slow", hang, timeout=0.2),
              Check("after", "after", lambda c: passed("ok"), ("slow",)),
              Check("fast", "fast", lambda c: passed("ok"))]
    try:
        results = {r.id: r for r in run_checks(checks, ctx(tmp_path))}
    finally:
        release.set()
    assert results["slow"].status == "fail" and "no answer within 0.2 s" in results["slow"].detail
    assert results["slow"].category == "connectivity"
    assert results["after"].status == "skip"
    assert results["fast"].status == "pass"


def test_independent_checks_run_at_the_same_time(tmp_path: Path) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def meet(c: DoctorContext) -> CheckResult:
        barrier.wait()  # only returns if all three run at once
        return passed("met")

    checks = [Check(n, n, meet) for n in ("x", "y", "z")]
    assert {r.status for r in run_checks(checks, ctx(tmp_path))} == {"pass"}


def test_errors_become_failures_with_their_hint_and_category(tmp_path: Path) -> None:
    def denied(c: DoctorContext) -> CheckResult:
        raise PermissionDeniedError("no access", "ask for roles/x")

    def unreachable(c: DoctorContext) -> CheckResult:
        raise ConnectivityError("down", "retry")

    def crash(c: DoctorContext) -> CheckResult:
        raise ZeroDivisionError("oops")

    checks = [Check("p", "p", denied), Check("n", "n", unreachable), Check("x", "x", crash)]
    results = {r.id: r for r in run_checks(checks, ctx(tmp_path))}
    assert (results["p"].category, results["p"].fix) == ("permission", "ask for roles/x")
    assert results["n"].category == "connectivity"
    assert "ZeroDivisionError" in results["x"].detail and results["x"].fix


@pytest.mark.parametrize(("categories", "code"), [
    ((), 0), (("config",), 1), (("connectivity",), 4), (("permission", "connectivity"), 3),
])
def test_exit_code_prefers_permission_then_connectivity(categories: tuple[str, ...],
                                                        code: int) -> None:
    results = tuple(CheckResult(f"c{i}", "fail", "x", "y", c)  # type: ignore[arg-type]
                    for i, c in enumerate(categories))
    warn = CheckResult("w", "warn", "x", "y")
    assert DoctorReport((*results, warn)).exit_code == code


def test_selection_adds_dependencies_and_accepts_an_area_prefix() -> None:
    chosen = [c.id for c in selection(ALL_CHECKS, ["bucket.probe"])]
    assert chosen[-1] == "bucket.probe"
    assert {"iam.bucket", "bucket.exists", "gcp.api.storage", "gcp.project",
            "credentials.token", "repo.config"} <= set(chosen)
    assert "db.query" not in chosen
    assert [c.id for c in selection(ALL_CHECKS, ["repo"])] == [
        "repo.git", "repo.config", "repo.ignored", "repo.secrets"]
    with pytest.raises(CollabError, match="unknown check 'nope'"):
        selection(ALL_CHECKS, ["nope"])


def test_every_check_has_a_unique_id_and_known_dependencies() -> None:
    ids = [c.id for c in ALL_CHECKS]
    assert len(ids) == len(set(ids)) == 23
    selection(ALL_CHECKS, None)  # raises on an unknown dependency or a cycle


def test_json_report_has_one_object_per_check_with_the_documented_keys(tmp_path: Path) -> None:
    report = run_doctor(lambda: DoctorContext(tmp_path), only=["repo"])
    doc = report.to_json()
    assert set(doc) == {"version", "exit_code", "summary", "checks", "fixes"}
    assert [c["id"] for c in doc["checks"]] == [r.id for r in report.results]
    for check in doc["checks"]:
        assert set(check) == {"id", "title", "status", "detail", "fix", "duration_ms"}
        assert check["status"] in ("pass", "warn", "fail", "skip")
        assert (check["fix"] is None) == (check["status"] in ("pass", "skip"))
