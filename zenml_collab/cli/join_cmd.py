"""`collab join` and `collab proxy start|stop|status|logs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zenml_collab.cli.render import console, err_console

if TYPE_CHECKING:
    from zenml_collab.actions.join import JoinPlan, JoinResult

_DIR = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                    default=".", show_default=True, help="Directory inside the repository.")


@click.command()
@_DIR
@click.option("--connector", type=click.Choice(["proxy", "python"]), default=None,
              help="proxy: Cloud SQL Auth Proxy in docker (default when docker answers); "
                   "python: in-process connector, no docker.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Local port of the proxy on 127.0.0.1 (default 3307, or as before).")
@click.option("--account", default=None, metavar="EMAIL",
              help="Your Google account, when your credentials do not name it.")
@click.option("--dry-run", is_flag=True, help="Check and show what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def join(directory: Path, connector: str | None, port: int | None, account: str | None,
         dry_run: bool, as_json: bool) -> None:
    """Connect this clone to the team's Cloud SQL database and bucket, and verify both.

    \b
    Checks your credentials and permissions first (nothing changes if one is missing),
    then starts the proxy (or uses the in-process connector), opens the metadata store,
    writes/reads/deletes a probe object in the bucket, and writes .collab/local.yaml.
    Running it again changes nothing.
    """
    from zenml_collab.actions.join import JoinPlan, JoinRequest
    from zenml_collab.actions.join import join as run_join

    request = JoinRequest(start=directory, connector=connector, port=port,  # type: ignore[arg-type]
                          account=account)
    progress = (lambda _msg: None) if as_json else \
        (lambda msg: err_console.print(f"[dim]- {msg}[/]"))
    outcome = run_join(request, dry_run=dry_run, on_progress=progress)
    if isinstance(outcome, JoinPlan):
        _print_plan(outcome, as_json)
        return
    if as_json:
        click.echo(json.dumps(_result_json(outcome), indent=2))
        return
    _print_result(outcome)


def _plan_json(plan: JoinPlan) -> dict[str, Any]:
    return {"root": str(plan.root), "member": plan.member, "db_user": plan.db_user,
            "credentials": plan.credentials_source, "connector": plan.connector,
            "connector_reason": plan.connector_reason, "port": plan.port, "image": plan.image,
            "instance": plan.gcp.instance, "database": plan.gcp.database,
            "artifacts": plan.artifact_uri, "changes": list(plan.changes)}


def _result_json(result: JoinResult) -> dict[str, Any]:
    return {**_plan_json(result.plan), "changes": list(result.changed),
            "unchanged": result.unchanged,
            "schema": {"revision": result.schema.revision, "head": result.schema.head,
                       "state": result.schema.state, "advice": result.schema.advice},
            "probe_object": result.probe_object,
            "proxy": None if result.proxy is None else {
                "name": result.proxy.name, "port": result.proxy.port,
                "ready": result.proxy.ready, "reused": result.proxy.reused},
            "next": list(result.next_steps)}


def _print_plan(plan: JoinPlan, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**_plan_json(plan), "dry_run": True}, indent=2))
        return
    console.print(f"you are {plan.member} (credentials: {plan.credentials_source})")
    console.print("permissions: [green]ok[/]")
    console.print(f"connector: {plan.connector} ({plan.connector_reason})")
    if not plan.changes:
        console.print("dry run: nothing would change; join would only verify the stores")
    for change in plan.changes:
        console.print(f"would {change}")


def _print_result(result: JoinResult) -> None:
    plan = result.plan
    if result.unchanged:
        console.print("[green]already joined[/]: nothing changed, both stores verified")
    else:
        console.print(f"[green]joined[/] the team stores of project {plan.gcp.project}")
    for change in result.changed:
        console.print(f"[green]done[/] {change}")
    via = (f"proxy {result.proxy.name} on 127.0.0.1:{result.proxy.port}"
           + (" (reused)" if result.proxy.reused else "")) if result.proxy else "in-process connector"
    console.print(f"member:         {plan.member} (database user {plan.db_user})")
    console.print(f"metadata store: {result.metadata_description} via {via}")
    state = result.schema.state
    console.print(f"schema:         {result.schema.revision or '(empty)'} ({state})")
    if result.schema.advice:
        console.print(f"[yellow]warning[/]: {result.schema.advice}")
    console.print(f"artifact store: {plan.artifact_uri} (probe object written, read, deleted)")
    console.print("next: " + ", ".join(f"`{step}`" for step in result.next_steps))


@click.group()
def proxy() -> None:
    """The Cloud SQL Auth Proxy container of this repository."""


@proxy.command("start")
@_DIR
def proxy_start(directory: Path) -> None:
    """Start the proxy with the settings `collab join` wrote (reuse it if it runs)."""
    from zenml_collab.actions.proxy import proxy_start as start

    status = start(directory)
    verb = "already running" if status.reused else "started"
    console.print(f"{verb}: {status.name} on 127.0.0.1:{status.port} ({status.connection_name})")


@proxy.command("stop")
@_DIR
def proxy_stop(directory: Path) -> None:
    """Stop and remove the proxy container."""
    from zenml_collab.actions.proxy import proxy_stop as stop

    console.print("stopped" if stop(directory) else "no proxy was running for this repository")


@proxy.command("status")
@_DIR
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def proxy_status(directory: Path, as_json: bool) -> None:
    """Show whether the proxy runs and is ready."""
    from dataclasses import asdict

    from zenml_collab.actions.proxy import proxy_status as status_of

    status = status_of(directory)
    if as_json:
        click.echo(json.dumps(asdict(status), indent=2))
        return
    if status.state == "absent":
        console.print(f"{status.name}: not running (start it with `collab proxy start`)")
        return
    ready = "[green]ready[/]" if status.ready else "[red]not ready[/]"
    console.print(f"{status.name}: {status.state}, {ready}, 127.0.0.1:{status.port} -> "
                  f"{status.connection_name} ({status.image})")


@proxy.command("logs")
@_DIR
@click.option("--tail", default=200, show_default=True, type=click.IntRange(1, 100_000))
def proxy_logs(directory: Path, tail: int) -> None:
    """Print the proxy's last log lines."""
    from zenml_collab.actions.proxy import proxy_logs as logs

    click.echo(logs(directory, tail=tail), nl=False)
