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
        "store": {"database", "action": "create"|"record"|"none", "store_id": str|null},
        "warnings": [str],
        "changes": int               # items whose action is not "none"
      },
      "applied": bool,               # false for --dry-run
      "collab_yaml": str|null,       # path written
      "store_id": str|null,          # the metadata store's id, recorded in collab.yaml
      "passwords": [{"member", "username", "password"}]   # --db-auth password only, once
    }

The plan is the one computed before applying (a second run shows ``"changes": 0``).

``grants`` lists the members whose IAM database user gets its database in this run: those
created now, or all with ``--regrant``. bootstrap runs them as the built-in user ``collab-admin``
after setting a fresh random password on it (``grant_user``) that is never stored or shown.

``store`` is the metadata store in the database, set up in that same login: ``create`` (a new
database: schema and store id initialised), ``record`` (an existing database whose store
``collab.yaml`` does not name yet: initialised if empty, its id read) or ``none``
(``collab.yaml`` already records the id: no login). The id lands in ``collab.yaml``
(``metadata.store_id``), so no member's join has to write it.

The work is one action call (:func:`zenml_collab.actions.bootstrap.bootstrap`); this module
parses flags, asks before enabling APIs and renders the plan and the outcome.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zenml_collab.actions.bootstrap.model import GRANT_ADMIN_USER
from zenml_collab.cli.render import console, err_console, table

if TYPE_CHECKING:
    from zenml_collab.actions.bootstrap.model import BootstrapOutcome, Plan, Progress
    from zenml_collab.infra.gcp.credentials import FoundCredentials

_ACTION_STYLE = {"create": "green", "add": "green", "enable": "green", "grant": "green",
                 "record": "green",
                 "update": "yellow",
                 "wait": "cyan", "none": "dim"}


def _styled(action: str, width: int = 0) -> str:
    label = ("ok" if action == "none" else action).ljust(width)
    return f"[{_ACTION_STYLE.get(action, '')}]{label}[/]"


def _resolve_project(project: str | None, found: FoundCredentials) -> str:
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


def _render_plan(plan: Plan) -> None:
    console.print(f"project [bold]{plan.request.project}[/] ({plan.request.region}), "
                  f"as {plan.admin or 'unknown account'}")
    rows = [[kind, name, _styled(action)] for kind, name, action in plan.rows()]
    console.print(table("resources", ["type", "name", "action"], rows))
    # Lines, not a table: roles and members are long and must never be cut off.
    console.print("IAM bindings")
    for action, text in plan.binding_lines():
        console.print(f"  {_styled(action, 6)}  {text}", overflow="ignore", crop=False)
    if plan.grants:
        console.print(f"database grants (as {GRANT_ADMIN_USER}, password set fresh "
                      "and never stored)")
    for action, text in plan.grant_lines():
        console.print(f"  {_styled(action, 6)}  {text}", overflow="ignore", crop=False)
    for warning in plan.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")


def _on_progress(event: Progress) -> None:
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
@click.option("--compute", type=click.Choice(["none", "vertex"]), default="none",
              show_default=True, help="vertex: also set up steps on Vertex AI (APIs, a Docker "
              "repository, the runner service account, members' compute roles).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (enable disabled APIs).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs).")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=".", show_default=True, help="Repository to write collab.yaml into.")
def bootstrap(project: str | None, region: str | None, instance: str, bucket: str | None,
              tier: str, database: str, members: tuple[str, ...], db_auth: str, regrant: bool,
              compute: str, dry_run: bool, yes: bool, as_json: bool, directory: Path) -> None:
    """Provision (or check) the team's Cloud SQL instance, bucket and IAM; safe to re-run."""
    from zenml_collab.actions import bootstrap as action
    from zenml_collab.infra.gcp.credentials import find_credentials

    _check_names(project, region, instance, bucket, tier, database)
    found = find_credentials()
    request = action.BootstrapRequest(
        project=_resolve_project(project, found), region=_resolve_region(region),
        members=members, instance=instance, bucket=bucket, tier=tier, database=database,
        db_auth="password" if db_auth == "password" else "iam", regrant=regrant,
        compute="vertex" if compute == "vertex" else "none")

    def confirm(plan: Plan) -> bool:
        if as_json or not sys.stdin.isatty():
            return False
        return click.confirm(f"enable {', '.join(plan.disabled_services)} in "
                             f"{request.project}?", default=True)

    outcome = action.bootstrap(request, found, directory, dry_run=dry_run, enable_services=yes,
                               confirm_enable=confirm,
                               on_plan=None if as_json else _render_plan,
                               on_progress=None if as_json else _on_progress)
    _finish(outcome, as_json)


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


def _finish(outcome: BootstrapOutcome, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome.to_json(), indent=2))
        return
    from rich.markup import escape

    tone, headline = outcome.headline
    if tone == "dry":
        console.print(headline, markup=False)
    else:
        label, _, rest = headline.partition(":")
        console.print(f"[green]{label}[/]:{escape(rest)}")
    for line in outcome.summary():
        console.print(line, markup=False, overflow="ignore", crop=False)
