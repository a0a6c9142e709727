"""Count the SQL statements an action sends (tests assert counts, never seconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def count_statements(engine: Any, action: Callable[[], object]) -> list[str]:
    """The first keyword of every statement ``engine`` executes while ``action`` runs."""
    import sqlalchemy as sa

    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return seen
