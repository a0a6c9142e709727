"""Check the member's Python packages against the environment the team's runs recorded."""

from __future__ import annotations

import shlex
from typing import Any

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.model import Check, CheckResult, NotApplicable, passed, warned

RECENT_RUNS = 20
SHOWN = 5
# Packages every environment has whose version says nothing about a step's results.
IGNORED = frozenset({"pip", "setuptools", "wheel"})


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def compare(mine: dict[str, str], team: dict[str, str]) -> tuple[list[str], list[str]]:
    """(differences that matter first, all differences), each as ``name mine -> team``.

    Order: zenml-collab itself, then major-version differences, then missing packages,
    then the rest; a package only the member has is not drift.
    """
    ranked: list[tuple[int, str, str]] = []
    for name, version in sorted(team.items()):
        if name in IGNORED:
            continue
        have = mine.get(name)
        if have == version:
            continue
        if name == "zenml-collab":
            rank = 0
        elif have is None:
            rank = 2
        elif _major(have) != _major(version):
            rank = 1
        else:
            rank = 3
        ranked.append((rank, name, f"{name} {have or '(missing)'} -> {version}"))
    ranked.sort()
    return [text for _, _, text in ranked], [name for _, name, _ in ranked]


def team_environment(ctx: DoctorContext) -> tuple[str, dict[str, Any], str] | None:
    """(hash, environment, run description) of the latest recorded team run, or None."""
    store = ctx.metadata_store()
    for run in store.list_runs(limit=RECENT_RUNS):
        if run.environment_hash:
            env = store.get_environment(run.environment_hash)
            if env is not None:
                who = f"{run.user or 'someone'}'s run of {run.pipeline_name!r}"
                return run.environment_hash, env, who
    return None


def check_packages(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.core.environment import capture_environment

    mine = capture_environment()
    found = team_environment(ctx)
    if found is None:
        raise NotApplicable("no run recorded an environment yet: nothing to compare with")
    env_hash, team, who = found
    if env_hash == mine.hash:
        return passed(f"same Python and packages as the latest team run ({who})")
    texts, names = compare(dict(mine.packages), team.get("packages") or {})
    python = ""
    if team.get("python", "").rsplit(".", 1)[0] != mine.python.rsplit(".", 1)[0]:
        python = f"Python {mine.python} vs the team's {team.get('python')}; "
    if not texts and not python:
        return passed(f"packages match the latest team run ({who}); only the platform or "
                      "extra packages differ")
    more = f" and {len(texts) - SHOWN} more" if len(texts) > SHOWN else ""
    pins = " ".join(shlex.quote(f"{n}=={team['packages'][n]}") for n in names[:SHOWN])
    fix = (f"install the team's versions: `pip install {pins}`" if pins
           else "use the team's Python version (e.g. with pyenv or uv)")
    return warned(f"{python}{len(texts)} package(s) differ from {who}: "
                  f"{'; '.join(texts[:SHOWN])}{more} (results may differ; caching is not "
                  "affected)", fix)


CHECKS = (
    Check("env.packages", "packages match the team's", check_packages, ("db.schema",),
          timeout=10),
)
