"""Terminal rendering shared by the commands (rich is imported only here)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

STATUS_STYLE = {"executed": "yellow", "cached": "green", "failed": "red",
                "completed": "green", "running": "cyan", "abandoned": "magenta"}


def styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    out = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*[str(c) if c is not None else "" for c in row])
    return out


def steps_table(run: Any) -> Table:
    return table(
        f"run {run.id[:8]} of {run.pipeline_name!r}",
        ["step", "status", "reason", "time"],
        [[s.name, styled(s.status), s.reason, f"{s.duration_ms:.1f} ms"] for s in run.steps],
    )
