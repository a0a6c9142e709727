"""`collab config`: where the metadata and artifact stores live (see actions/config.py).

\b
  collab config metadata set mysql --host H --port P --username U --database D --password-stdin
  collab config metadata set sqlite [--path .collab/metadata.db]
  collab config metadata set cloudsql --instance P:R:I --database D --iam-user EMAIL
  collab config artifacts set gs://BUCKET/PREFIX
  collab config show
  collab config validate
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zenml_collab.cli.render import console, err_console, table

if TYPE_CHECKING:
    from zenml_collab.actions.config import SetResult

_PLACEMENT = [
    click.option("--team", "placement", flag_value="team",
                 help="Write member values (host, port, username) to collab.yaml too; needed to "
                      "change a bootstrapped team's collab.yaml at all."),
    click.option("--local", "placement", flag_value="local",
                 help="Write everything to .collab/local.yaml (a private override)."),
]
_VERIFY = click.option("--verify/--no-verify", default=True, show_default=True,
                       help="Connect to the store before writing anything.")


def _placement(func: Any) -> Any:
    for option in reversed(_PLACEMENT):
        func = option(func)
    return func


@click.group()
def config() -> None:
    """Show, set and validate where the metadata and artifact stores live.

    Team-wide values go to the committed collab.yaml, a member's own values and any password
    to .collab/local.yaml (mode 0600, ignored by git).
    """


@config.group()
def metadata() -> None:
    """The metadata store (runs, cache index)."""


@metadata.group("set")
def metadata_set() -> None:
    """Point this clone at a metadata store: sqlite, mysql or cloudsql."""


def _read_password(password_stdin: bool, password_flag: str | None, prompt: bool) -> str | None:
    import os

    if password_flag is not None:
        err_console.print("[yellow]warning:[/] --password puts the password in your shell "
                          "history and the process list; prefer --password-stdin or "
                          "COLLAB_DB_PASSWORD")
        return password_flag
    if password_stdin:
        text = sys.stdin.readline() if not sys.stdin.isatty() else click.prompt(
            "Password", hide_input=True, default="", show_default=False)
        return text.rstrip("\r\n")
    if "COLLAB_DB_PASSWORD" in os.environ or not prompt:
        return None
    if not sys.stdin.isatty():
        from zenml_collab.errors import ConfigError

        raise ConfigError("no password given and no terminal to ask for one",
                          "pipe it in with --password-stdin, or set COLLAB_DB_PASSWORD")
    value: str = click.prompt("Password", hide_input=True)
    return value


def _written(result: SetResult) -> None:
    for path in result.written:
        console.print(f"wrote {path}")
    if not result.written:
        console.print("nothing changed")
    if result.note:
        console.print(result.note)


def _report(result: SetResult) -> None:
    _written(result)
    console.print(f"metadata store: {result.description}")
    if result.detail:
        console.print(result.detail)


@metadata_set.command("mysql")
@click.option("--host", required=True)
@click.option("--port", type=click.IntRange(1, 65535), default=3306, show_default=True)
@click.option("--username", "--user", "username", required=True)
@click.option("--database", required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--password", "--passwd", "password_flag", default=None, hidden=True,
              help="Deprecated: visible in shell history; use --password-stdin.")
@click.option("--create-database/--no-create-database", default=True, show_default=True,
              help="Create the database if it does not exist (needs the CREATE grant).")
@_VERIFY
@_placement
def metadata_set_mysql(host: str, port: int, username: str, database: str,
                       password_stdin: bool, password_flag: str | None, create_database: bool,
                       verify: bool, placement: str | None) -> None:
    """A MySQL (or MariaDB) server reachable over TCP, e.g. through the Cloud SQL proxy.

    The password comes from --password-stdin, COLLAB_DB_PASSWORD or a hidden prompt.
    """
    from zenml_collab.actions.config import find_config_root, metadata_values, set_metadata

    values = metadata_values("mysql", host=host, port=port, username=username,
                             database=database)
    password = _read_password(password_stdin, password_flag, prompt=True)
    _report(set_metadata(find_config_root(), values, password=password,
                         placement=placement or "split",  # type: ignore[arg-type]
                         verify=verify, create_database=create_database))


@metadata_set.command("sqlite")
@click.option("--path", default=None,
              help="Database file; relative to the repo root (default .collab/metadata.db).")
@_VERIFY
@_placement
def metadata_set_sqlite(path: str | None, verify: bool, placement: str | None) -> None:
    """An embedded SQLite file (one member, or a shared filesystem)."""
    from zenml_collab.actions.config import find_config_root, metadata_values, set_metadata

    _report(set_metadata(find_config_root(), metadata_values("sqlite", path=path),
                         placement=placement or "split",  # type: ignore[arg-type]
                         verify=verify))


@metadata_set.command("cloudsql")
@click.option("--instance", required=True, help="Connection name project:region:instance.")
@click.option("--database", required=True)
@click.option("--iam-user", default=None, metavar="EMAIL",
              help="IAM database login of this member (the default auth).")
@click.option("--username", default=None, help="Built-in database user (password auth).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--connector", type=click.Choice(["proxy", "python"]), default=None)
@_VERIFY
@_placement
def metadata_set_cloudsql(instance: str, database: str, iam_user: str | None,
                          username: str | None, password_stdin: bool, connector: str | None,
                          verify: bool, placement: str | None) -> None:
    """A Cloud SQL for MySQL instance, reached with IAM or built-in database auth."""
    from zenml_collab.actions.config import find_config_root, metadata_values, set_metadata
    from zenml_collab.errors import ConfigError

    if iam_user and username:
        raise ConfigError("give either --iam-user or --username, not both",
                          "--iam-user for IAM database auth, --username for a password user")
    auth = "password" if username else "iam"
    # MySQL IAM logins are the member's email without its domain.
    login = username or (iam_user.split("@")[0] if iam_user else None)
    values = metadata_values("cloudsql", instance=instance, database=database, auth=auth,
                             username=login, connector=connector)
    password = _read_password(password_stdin, None, prompt=auth == "password")
    _report(set_metadata(find_config_root(), values, password=password,
                         placement=placement or "split",  # type: ignore[arg-type]
                         verify=verify))


@config.group()
def artifacts() -> None:
    """The artifact store (step outputs)."""


@artifacts.command("set")
@click.argument("uri")
@_VERIFY
@_placement
def artifacts_set(uri: str, verify: bool, placement: str | None) -> None:
    """Store artifacts at URI: gs://BUCKET/PREFIX or a local folder."""
    from zenml_collab.actions.config import find_config_root, set_artifacts

    result = set_artifacts(find_config_root(), uri,
                           placement=placement or "split",  # type: ignore[arg-type]
                           verify=verify)
    _written(result)
    console.print(f"artifact store: {result.description}")
    if result.detail:
        console.print(result.detail)


@config.command("show")
def show() -> None:
    """The effective settings and where each comes from (flag/env/local/team/default)."""
    from zenml_collab.actions.config import explain_settings, find_config_root

    root = find_config_root()
    rows = explain_settings(root)
    console.print(f"repository: {root}")
    console.print(table("settings", ["key", "value", "from"],
                        [[r.key, r.value, r.source] for r in rows]))


@config.command("validate")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Repository to check (default: the current one).")
def validate(directory: Path | None) -> None:
    """Check collab.yaml and .collab/local.yaml; list every problem, exit 1 if any."""
    from rich.markup import escape

    from zenml_collab.actions.config import find_config_root, validate_config
    from zenml_collab.errors import ConfigError

    root = find_config_root(directory)
    problems = validate_config(root)
    for problem in problems:
        err_console.print(f"[red]x[/] {escape(problem)}", soft_wrap=True)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the configuration of {root}",
                          "fix each one above (see README: Configuration)")
    console.print(f"configuration of {root} is valid")
