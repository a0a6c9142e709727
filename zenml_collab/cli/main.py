"""The `collab` command: one place that maps errors to messages and exit codes.

Subcommands live in their own modules and are imported only when invoked, so `collab --help`
does not pay for SQLAlchemy, pandas or the Google libraries.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from typing import Any

import click

from zenml_collab import __version__
from zenml_collab.errors import EXIT_USAGE, EXIT_USER, CollabError

# name -> (module:attribute, short help shown by `collab --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("zenml_collab.cli.repo_cmds:init", "Make this git repo a zenml-collab repository."),
    "quickstart": ("zenml_collab.cli.quickstart_cmd:quickstart",
                   "Play the team workflow end to end in a temporary directory."),
    "run": ("zenml_collab.cli.repo_cmds:run", "Run a pipeline from its pipelines/*.yaml config."),
    "pipelines": ("zenml_collab.cli.repo_cmds:pipelines", "List the team's pipelines."),
    "runs": ("zenml_collab.cli.repo_cmds:runs", "List runs and show one run's steps."),
    "show": ("zenml_collab.cli.show_cmd:show",
             "Show a pipeline's schema, statistics, anomalies or evaluation."),
    "db": ("zenml_collab.cli.repo_cmds:db", "Metadata store schema: status and upgrade."),
    "config": ("zenml_collab.cli.config_cmds:config", "Show, set and validate store settings."),
    "bootstrap": ("zenml_collab.cli.bootstrap_cmd:bootstrap",
                  "Admin: provision the team's Cloud SQL, bucket and IAM."),
    "join": ("zenml_collab.cli.join_cmd:join", "Connect this clone to the team's stores."),
    "proxy": ("zenml_collab.cli.join_cmd:proxy", "Start, stop and inspect the Cloud SQL proxy."),
    "doctor": ("zenml_collab.cli.doctor_cmd:doctor",
               "Diagnose permission and connectivity problems, with fixes."),
    "image": ("zenml_collab.cli.image_cmd:image",
              "Build (and push) the image docker and vertex steps run in."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not _available(cmd_name):
            return None
        path, _ = COMMANDS[cmd_name]
        module, _, attr = path.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _available(name: str) -> bool:
    module = COMMANDS[name][0].partition(":")[0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="collab")
def cli() -> None:
    """zenml-collab: share one reproducible, cached pipeline history with your team.

    \b
    Exit codes: 0 ok, 1 user error, 2 usage, 3 permission denied, 4 connectivity.
    Set COLLAB_DEBUG=1 to see tracebacks of unexpected errors.
    """


def _show_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def _show_cause(exc: CollabError) -> None:
    """For a failed step: where in the member's own code it failed (all of it with COLLAB_DEBUG)."""
    cause = exc.__cause__
    if cause is None or isinstance(cause, CollabError):
        return
    import traceback

    frames = traceback.extract_tb(cause.__traceback__)
    if os.environ.get("COLLAB_DEBUG"):
        click.echo("".join(traceback.format_exception(cause)), err=True, nl=False)
        return
    own = [f for f in frames if "zenml_collab" not in f.filename.replace("\\", "/").split("/")]
    if own:
        last = own[-1]
        click.echo(f"  at {last.filename}:{last.lineno} in {last.name}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    try:
        cli.main(args=argv, prog_name="collab", standalone_mode=False)
    except CollabError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        _show_cause(exc)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USER)
    except KeyboardInterrupt:
        click.echo("\ninterrupted; re-run the same command to resume", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("COLLAB_DEBUG"):
            raise
        click.secho(f"error: internal error: {type(exc).__name__}: {exc}", fg="red", err=True)
        click.echo("hint: re-run with COLLAB_DEBUG=1 to see the traceback, and report it",
                   err=True)
        sys.exit(EXIT_USER)
    sys.exit(0)


if __name__ == "__main__":
    main()
