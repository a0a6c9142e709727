"""`collab bootstrap`: the admin's one command to provision (or check) the team's Google Cloud.

``--json`` prints one object on stdout (progress goes nowhere), shape version 1::

    {
      "version": 1,
      "dry_run": bool,
      "plan": {
        "project", "region", "instance", "connection_name", "database", "bucket", "tier",
        "db_auth": "iam"|"password", "members": [str], "admin": str|null,
        "services":  [{"name", "enabled": bool, "action": "enable"|"none"}],
        "resources": [{"type": "sql_instance"|"sql_database"|"sql_user"|"bucket",
                       "name", "action": "create"|"update"|"wait"|"none", "settings": {}}],
        "bindings":  [{"scope": "project"|"bucket", "resource": "projects/P"|"gs://B",
                       "role", "member", "action": "add"|"none"}],
        "grants":    [{"member", "login", "database", "reason": "new user"|"regrant",
                       "action": "grant"}],   # GRANT ALL PRIVILEGES ON `database`.* TO login@%
        "grant_user": {"name": "collab-admin", "action": "create"|"update"|"none"},
        "warnings": [str],
        "changes": int               # items whose action is not "none"
      },
      "applied": bool,               # false for --dry-run
      "collab_yaml": str|null,       # path written
      "passwords": [{"member", "username", "password"}]   # --db-auth password only, once
    }

The plan is the one computed before applying (a second run shows ``"changes": 0``).

``grants`` lists the members whose IAM database user gets its database in this run: those
created now, or all with ``--regrant``. bootstrap runs them as the built-in user ``collab-admin``
after setting a fresh random password on it (``grant_user``) that is never stored or shown.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from zenml_collab.cli.render import console, err_console, table
from zenml_collab.errors import CollabError

_ACTION_STYLE = {"create": "green", "add": "green", "enable": "green", "grant": "green",
                 "update": "yellow",
                 "wait": "cyan", "none": "dim"}


def _styled(action: str, width: int = 0) -> str:
    label = ("ok" if action == "none" else action).ljust(width)
    return f"[{_ACTION_STYLE.get(action, '')}]{label}[/]"


def _resolve_project(project: str | None, found: Any) -> str:
    from zenml_collab.infra.gcp.credentials import gcloud_config_value

    value = (project or os.environ.get("CLOUDSDK_CORE_PROJECT")
             or os.environ.get("GOOGLE_CLOUD_PROJECT") or found.project
             or gcloud_config_value("core", "project"))
    if not value:
        raise click.UsageError("no project: pass --project P (or set CLOUDSDK_CORE_PROJECT, "
                               "or `gcloud config set project P`)")
    return str(value)


def _resolve_region(region: str | None) -> str:
    from zenml_collab.infra.gcp.credentials import gcloud_config_value

    value = (region or os.environ.get("CLOUDSDK_COMPUTE_REGION")
             or gcloud_config_value("compute", "region"))
    if not value:
        raise click.UsageError("no region: pass --region R (e.g. europe-west1), or set "
                               "CLOUDSDK_COMPUTE_REGION")
    return value


def _render_plan(plan: Any) -> None:
    data = plan.to_json()
    console.print(f"project [bold]{data['project']}[/] ({data['region']}), "
                  f"as {data['admin'] or 'unknown account'}")
    rows = [["service", s["name"], _styled(s["action"])] for s in data["services"]]
    rows += [[r["type"], r["name"], _styled(r["action"])] for r in data["resources"]]
    console.print(table("resources", ["type", "name", "action"], rows))
    # Lines, not a table: roles and members are long and must never be cut off.
    console.print("IAM bindings")
    for b in data["bindings"]:
        console.print(f"  {_styled(b['action'], 6)}  {b['role']}  {b['member']}  "
                      f"on {b['resource']}", overflow="ignore", crop=False)
    if data["grants"]:
        console.print(f"database grants (as {data['grant_user']['name']}, password set fresh "
                      "and never stored)")
    for g in data["grants"]:
        console.print(f"  {_styled(g['action'], 6)}  ALL PRIVILEGES on `{g['database']}`.* to "
                      f"'{g['login']}'@'%'  ({g['reason']}: {g['member']})",
                      overflow="ignore", crop=False)
    for warning in data["warnings"]:
        err_console.print(f"[yellow]warning:[/] {warning}")


def _on_progress(event: Any) -> None:
    op = event.operation
    if op is not None and op.status != "DONE" and op.polls % 10 != 1:
        return  # one line every ten polls, not a flood
    console.print(f"  {event.step}: {event.message}")


@click.command()
@click.option("--project", help="Google Cloud project id (default: CLOUDSDK_CORE_PROJECT, "
              "GOOGLE_CLOUD_PROJECT, the credentials' or gcloud's project).")
@click.option("--region", help="Region, e.g. europe-west1 (default: CLOUDSDK_COMPUTE_REGION or "
              "gcloud's compute/region).")
@click.option("--instance", default="zenml-metadata", show_default=True,
              help="Cloud SQL instance name.")
@click.option("--bucket", help="Artifact bucket [default: <project>-zenml-artifacts].")
@click.option("--tier", default="db-custom-1-3840", show_default=True,
              help="Cloud SQL machine tier.")
@click.option("--database", default="zenml", show_default=True, help="Database name.")
@click.option("--member", "members", multiple=True, required=True,
              help="A teammate: user:a@x.com or serviceAccount:sa@p.iam.gserviceaccount.com "
                   "(repeat; include yourself).")
@click.option("--db-auth", type=click.Choice(["iam", "password"]), default="iam",
              show_default=True, help="How members log in to MySQL.")
@click.option("--regrant", is_flag=True, help="Grant every member's IAM database user its "
              "database again (repairs an interrupted run or a hand-made user).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (enable disabled APIs).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Repository to write collab.yaml into.")
def bootstrap(project: str | None, region: str | None, instance: str, bucket: str | None,
              tier: str, database: str, members: tuple[str, ...], db_auth: str, regrant: bool,
              dry_run: bool, yes: bool, as_json: bool, directory: Path) -> None:
    """Provision (or check) the team's Cloud SQL instance, bucket and IAM; safe to re-run."""
    from zenml_collab.actions import bootstrap as action
    from zenml_collab.infra.gcp.clients import GcpClients
    from zenml_collab.infra.gcp.credentials import find_credentials

    _check_names(project, region, instance, bucket, tier, database)
    found = find_credentials()
    request = action.BootstrapRequest(
        project=_resolve_project(project, found), region=_resolve_region(region),
        members=members, instance=instance, bucket=bucket, tier=tier, database=database,
        db_auth="password" if db_auth == "password" else "iam", regrant=regrant)
    with GcpClients.from_found(found, request.project) as clients:
        plan = action.plan(clients, request)
        if not as_json:
            _render_plan(plan)
        if dry_run:
            _finish(as_json, plan, applied=False)
            return
        enable = yes
        if plan.disabled_services and not yes and not as_json and sys.stdin.isatty():
            enable = click.confirm(f"enable {', '.join(plan.disabled_services)} in "
                                   f"{request.project}?", default=True)
        try:
            result = action.apply(clients, plan, None if as_json else _on_progress,
                                  enable_services=enable)
        except KeyboardInterrupt:
            # Users created before the interrupt exist on the re-run, so only --regrant grants
            # them their database.
            again = " with --regrant" if plan.grants else ""
            raise CollabError("interrupted; what was started keeps going on Google's side",
                              f"re-run the same command{again}: it resumes from what "
                              "exists") from None
    root = action.config_root(directory)
    before = _read(root / "collab.yaml")
    path, own = action.write_config(root, plan, result.passwords)
    handed = tuple(p for p in result.passwords if p is not own)
    _finish(as_json, plan, applied=True, path=path, passwords=handed, own=own,
            config_changed=_read(path) != before)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _check_names(project: str | None, region: str | None, instance: str, bucket: str | None,
                 tier: str, database: str) -> None:
    """The names given as flags, checked before credentials are looked up or any request is
    made (members, and defaults resolved later, are checked by ``BootstrapRequest.validated``).
    """
    from zenml_collab import names

    if project:
        names.check_project(project)
        names.check_instance(instance, project=project)
    else:
        names.check_instance(instance)
    if region:
        names.check_region(region)
    if bucket:
        names.check_bucket(bucket)
    names.check_tier(tier)
    names.check_database(database)


def _finish(as_json: bool, plan: Any, *, applied: bool, path: Path | None = None,
            passwords: tuple[Any, ...] = (), own: Any = None, config_changed: bool = True
            ) -> None:
    if as_json:
        click.echo(json.dumps({
            "version": 1, "dry_run": not applied, "plan": plan.to_json(), "applied": applied,
            "collab_yaml": str(path) if path else None,
            "passwords": [{"member": p.member, "username": p.username, "password": p.password}
                          for p in passwords],
        }, indent=2))
        return
    if not applied:
        console.print(f"dry run: {plan.changes} change(s) planned, none made")
        return
    if plan.changes == 0 and not config_changed:
        # A re-run on a complete setup: one coherent line, and no "next" steps to repeat.
        console.print(f"[green]everything is in place[/]: no change made; {path} is up to date")
        return
    if plan.changes == 0:
        console.print(f"[green]everything is in place[/] in Google Cloud: no change made there; "
                      f"wrote {path}")
    else:
        console.print(f"[green]done[/]: {plan.changes} change(s); wrote {path}")
    if plan.grants:
        console.print(f"granted {len(plan.grants)} member(s) the database {plan.request.database}")
    if own is not None:
        console.print(f"your database password is in .collab/local.yaml (user {own.username})")
    for p in passwords:
        # Shown once: the admin hands it over privately; it is stored nowhere else.
        console.print(f"password for {p.member} (database user {p.username}): {p.password}")
    if passwords:
        console.print("[yellow]hand each password to its member privately; it is not stored "
                      "anywhere and will not be shown again[/]")
    console.print("next:\n"
                  f"  1. commit it: git add {path.name if path else 'collab.yaml'} .gitignore && "
                  "git commit -m 'zenml-collab team config' && git push\n"
                  "  2. each teammate pulls, runs `gcloud auth application-default login`, "
                  "then `collab join`")
