"""Section 6: ``collab doctor`` and ``collab join`` on the fakes.

Skips, saying so, while ``collab doctor --help`` fails (the commands are being written).
Once they exist it times their ``--help`` (the cost of their imports) and then calls
:func:`team_scenario`, the hook where the real runs against the fakes go.
"""

from __future__ import annotations

from benchmarks.context import Context
from benchmarks.harness import Figure, Skip, measure_process, run_process
from benchmarks.workspace import collab_argv


def team_scenario(ctx: Context) -> list[Figure]:
    """HOOK: time `collab doctor --json` and `collab join` against the fakes.

    Fill in: start the fake GCP server (``python -m zenml_collab.testing.fake_gcp``) with a
    project, instance and bucket, write a repo whose ``collab.yaml`` names them, point
    ``COLLAB_SQLADMIN_ENDPOINT`` / ``COLLAB_RESOURCEMANAGER_ENDPOINT`` /
    ``STORAGE_EMULATOR_HOST`` / ``GOOGLE_APPLICATION_CREDENTIALS`` at it (the services of
    ``scripts/bench`` are in ``COLLAB_TEST_MYSQL_URL`` and ``COLLAB_TEST_GCS_ENDPOINT``), then
    return e.g.::

        [measure_process("doctor", "collab doctor --json (fakes)",
                         [*collab_argv(), "doctor", "--json"], cwd=root, env=env,
                         repeat=ctx.sizes.repeat_process),
         measure_process("join", "collab join --connector python (fakes, re-run)", ...)]

    ``targets.py`` can then get a target for them.
    """
    raise Skip("the doctor/join scenario on the fakes is not written yet: fill in "
               "benchmarks/bench_team.py:team_scenario")


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
        ctx.note(str(exc))
    return figures
