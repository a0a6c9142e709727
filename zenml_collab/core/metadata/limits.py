"""Explicit size limits of what the metadata store records, checked before any write.

The columns are bounded (names VARCHAR(200), JSON in TEXT: 65,535 bytes on MySQL); SQLite
would accept anything and MySQL in strict mode refuses with a driver error. Checking here gives
the member one clear error on both, before a single row is written.
"""

from __future__ import annotations

from zenml_collab.errors import PipelineError

NAME_MAX = 200  # pipeline and step names (characters)
STEP_PATH_MAX = 500  # a step's import path (characters)
JSON_MAX_BYTES = 65_535  # parameters, inputs, outputs (UTF-8 bytes of their JSON)


def check_name(kind: str, name: str, limit: int = NAME_MAX) -> None:
    if not name:
        raise PipelineError(f"the {kind} name is empty", f"give the {kind} a name")
    if len(name) > limit:
        raise PipelineError(
            f"the {kind} name {name[:40]!r}... is {len(name)} characters; the metadata store "
            f"keeps at most {limit}", f"give the {kind} a shorter name")


def check_json(what: str, text: str, limit: int = JSON_MAX_BYTES) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise PipelineError(
            f"{what} is {size:,} bytes as JSON; the metadata store keeps at most {limit:,}",
            "pass large values as data (a datasource file or a step output), not as a "
            "parameter")
