"""The environment's layer (``COLLAB_DB_URL``, ``COLLAB_DB_PASSWORD``, ``COLLAB_ARTIFACT_URI``)
and :func:`load_settings`, the one place the layers are merged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from zenml_collab.config.files import format_validation_error, load_local_config, load_team_config
from zenml_collab.config.models import ArtifactsConfig, Settings, merge_metadata
from zenml_collab.errors import ConfigError


def env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """The metadata values the environment sets (``COLLAB_DB_PASSWORD``, ``COLLAB_DB_URL``)."""
    over: dict[str, Any] = {}
    if "COLLAB_DB_PASSWORD" in env:
        over["password"] = env["COLLAB_DB_PASSWORD"]
    if "COLLAB_DB_URL" in env:
        over.update(_parse_db_url(env["COLLAB_DB_URL"]))
    return over


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for messages and logs.

    >>> mask_url("mysql://alice:s3cret@db:3306/team")
    'mysql://alice:***@db:3306/team'
    >>> mask_url("mysql://alice:s3cret")   # malformed: no '@', so no way to tell
    'mysql://***'
    >>> mask_url("mysql://alice@db/team?password=s3cret")   # query parameters may hold one
    'mysql://alice@db/team?***'
    """
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=-1)
    if cut >= 0:
        return mask_url(url[:cut]) + url[cut] + "***"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if url else url
    credentials, at, location = rest.rpartition("@")
    if at:
        user = credentials.partition(":")[0]
        return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{location}"
    if re.fullmatch(r"[A-Za-z0-9.\-]*(:\d+)?(/[^:@]*)?", rest):
        return url  # host[:port]/database or a path: nothing secret
    return f"{scheme}://***"


def _parse_db_url(url: str) -> dict[str, Any]:
    """``sqlite:///path`` or ``mysql[+pymysql]://user[:password]@host[:port]/database``.

    User and password may be percent-encoded (``p%40ss`` for ``p@ss``); the host is what
    follows the last ``@``, so an unencoded ``@`` in the password still parses.
    """
    from urllib.parse import unquote

    if url.startswith("sqlite:///"):
        return {"kind": "sqlite", "path": url.removeprefix("sqlite:///")}
    bad = ConfigError(
        f"COLLAB_DB_URL has an unsupported form: {mask_url(url)!r}",
        "use sqlite:///path/metadata.db or mysql://user[:password]@host:port/database "
        "(percent-encode special characters in the password)",
    )
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mysql", "mysql+pymysql"):
        raise bad
    credentials, at, location = rest.rpartition("@")
    match = re.match(r"^(?P<host>[^:/]+)(?::(?P<port>\d+))?/(?P<db>[^?/]+)$", location)
    user, _, password = credentials.partition(":")
    if not at or not user or not match:
        raise bad
    out: dict[str, Any] = {
        "kind": "mysql",
        "username": unquote(user),
        "host": match["host"],
        "port": int(match["port"] or 3306),
        "database": match["db"],
    }
    if password:
        out["password"] = unquote(password)
    return out


def load_settings(
    root: Path,
    *,
    env: dict[str, str] | None = None,
    metadata_override: dict[str, Any] | None = None,
    artifacts_override: str | None = None,
) -> Settings:
    """Load and merge the config layers of the repo at ``root``."""
    env = dict(os.environ) if env is None else env
    team = load_team_config(root)
    local = load_local_config(root)
    try:
        metadata = merge_metadata(team.metadata, local.metadata, env_overrides(env),
                                  metadata_override)
    except ValidationError as exc:
        raise format_validation_error("metadata settings", exc) from None
    uri = (
        artifacts_override
        or env.get("COLLAB_ARTIFACT_URI")
        or (local.artifacts.uri if local.artifacts else None)
        or team.artifacts.uri
    )
    return Settings(
        root=root, metadata=metadata, artifacts=ArtifactsConfig(uri=uri), team=team, local=local
    )
