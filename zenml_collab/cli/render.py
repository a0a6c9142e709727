"""Terminal rendering shared by the commands (rich is imported only here, on first use).

rich costs ~17 ms to import; a command that prints nothing through it (``collab run``, whose
lines go through :func:`echo_status`) never pays it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from zenml_collab.core.metadata.records import StepExecution
    from zenml_collab.core.run import Run


# C0/C1 control characters but tab and newline: text from the shared stores (a teammate's user
# name, host, error, step reason) must not drive the member's terminal (clear the screen, set
# the clipboard through OSC 52, fake a hyperlink).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without terminal control characters (each shown as ``?``)."""
    return _CONTROL.sub("?", text)


class _LazyConsole:
    """A rich ``Console`` created on first use; printed strings lose control characters."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)

    def print(self, *objects: Any, **options: Any) -> None:
        self.__getattr__("print")(*(clean(o) if isinstance(o, str) else o for o in objects),
                                  **options)


console = cast("Console", _LazyConsole(highlight=False))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False))

STATUS_STYLE = {"executed": "yellow", "cached": "green", "failed": "red",
                "completed": "green", "running": "cyan", "abandoned": "magenta"}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def echo_status(before: str, status: str, after: str = "") -> None:
    """One line with ``status`` coloured like :func:`styled`, without rich (plain on a pipe;
    no markup: a reason with brackets is printed as it is)."""
    click.echo(clean(before) + click.style(status, fg=STATUS_STYLE.get(status)) + clean(after))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    from rich.table import Table

    out = Table(title=clean(title) if title else title, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*[clean(str(c)) if c is not None else "" for c in row])
    return out


def steps_table(run: Run) -> Table:
    if not any(s.execution for s in run.steps):
        return table(
            f"run {run.id[:8]} of {run.pipeline_name!r}",
            ["step", "status", "reason", "time"],
            [[s.name, styled(s.status), s.reason, f"{s.duration_ms:.1f} ms"] for s in run.steps],
        )
    return table(  # some step ran in a container or a job: say where
        f"run {run.id[:8]} of {run.pipeline_name!r}",
        ["step", "status", "reason", "where", "time"],
        [[s.name, styled(s.status), s.reason, where(s.execution), f"{s.duration_ms:.1f} ms"]
         for s in run.steps],
    )


def where(execution: StepExecution | None) -> str:
    """``vertex job projects/…/customJobs/7 image sha256:…``; ``-`` for in-process/cached."""
    if execution is None:
        return "-"
    parts = [execution.backend]
    if execution.job:
        parts.append(f"job {execution.job}")
    if execution.image:
        parts.append(f"image {execution.image}")
    return " ".join(parts)
