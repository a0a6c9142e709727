"""`collab quickstart`."""

from __future__ import annotations

from pathlib import Path

import click

from zenml_collab.cli.render import console, styled, table


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="An empty directory to work in (default: a new temporary one).")
def quickstart(directory: Path | None) -> None:
    """Two members share one pipeline history: runs, cache hits, copy and re-run."""
    from zenml_collab.actions.quickstart import run_quickstart

    result = run_quickstart(directory, on_event=lambda msg: console.print(f"[bold]>[/] {msg}"))
    names = [s.name for s in result.runs[0].run.steps]
    labels = ["alice: Pipeline A", "alice: Pipeline A again", "bob: Pipeline B"]
    rows = [[name, *[styled(r.run[name].status) if name in r.run.statuses else "-"
                     for r in result.runs]] for name in names]
    console.print(table("what each run did", ["step", *labels], rows))
    bob = result.runs[-1].run
    hits = [s.name for s in bob.steps if s.status == "cached"]
    console.print(f"bob's {', '.join(hits) or 'no steps'} came from alice's run via the team "
                  "store; he executed only:")
    for s in bob.steps:
        if s.status != "cached":
            console.print(f"  {s.name}: {s.reason}")
    console.print(f"\nteam repo (bare): {result.base / 'origin.git'}")
    console.print(f"team stores:      {result.store} (metadata.db + artifacts/)")
    console.print(f"member clones:    {result.clones['alice']}  {result.clones['bob']}")
    console.print(f"script output:    {result.base / 'quickstart.log'}")
    console.print("\nnext: cd into a clone and try `collab runs list`, `collab show 'Pipeline A' "
                  "--evaluate`, or `collab run pipelines/pipeline-b.yaml`")
