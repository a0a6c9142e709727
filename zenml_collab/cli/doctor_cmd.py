"""`collab doctor`: render the doctor report (text or --json) and exit with its code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from zenml_collab.cli.render import console

MARK = {"pass": "[green]✔ pass[/]", "warn": "[yellow]! warn[/]", "fail": "[red]✘ fail[/]",
        "skip": "[dim]- skip[/]"}


@click.command()
@click.option("--member", default=None, metavar="user:EMAIL",
              help="Admin: evaluate another member's IAM bindings and database user.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (see README).")
@click.option("--check", "only", multiple=True, metavar="ID",
              help="Run only this check (and what it needs); repeatable; a prefix like "
                   "`iam` selects a whole area.")
@click.option("--fix", is_flag=True,
              help="Apply the safe local fixes (ignore line, proxy start, schema upgrade); "
                   "never touches IAM.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Directory inside the repository.")
def doctor(member: str | None, as_json: bool, only: tuple[str, ...], fix: bool,
           directory: Path) -> None:
    """Diagnose the setup: repo, credentials, IAM, Cloud SQL, proxy, bucket, packages.

    \b
    Exit codes: 0 nothing failed, 3 a permission check failed, 4 a connectivity check
    failed, 1 any other failure.
    """
    from zenml_collab.actions.doctor import DoctorContext, run_doctor

    report = run_doctor(lambda: DoctorContext(directory, member=member),
                        only=list(only) or None, fix=fix)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        for applied in report.applied:
            state = "[green]fixed[/]" if applied.ok else "[red]could not fix[/]"
            console.print(f"{state} {applied.check_id}: {applied.message}")
        for result in report.results:
            console.print(f"{MARK[result.status]}  [bold]{result.id}[/]  {result.detail}",
                          soft_wrap=True)
            if result.fix and result.status != "pass":
                console.print(f"          fix: {result.fix}", soft_wrap=True)
        counts = report.to_json()["summary"]
        console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    sys.exit(report.exit_code)
