"""The values of `collab join`: the request, the plan, what was verified and the result.

Everything here is a frozen value (or the error naming missing permissions); the phases that
produce them live in :mod:`.planning`, :mod:`.applying` and :mod:`.verify`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from zenml_collab.config import (
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    load_team_config,
    merge_metadata,
)
from zenml_collab.errors import PermissionDeniedError
from zenml_collab.infra import proxy as px

Connector = Literal["proxy", "python"]
Progress = Callable[[str], None]
DEFAULT_PROXY_PORT = 3307  # not 3306: members often run a MySQL of their own there


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class JoinRequest:
    """What the member asked for; ``None`` means "work it out"."""

    start: Path = Path(".")
    connector: Connector | None = None  # None: proxy when docker answers, else python
    port: int | None = None
    account: str | None = None  # the member's email when the credentials do not name it
    proxy_image: str | None = None
    # Extra proxy flags and read-only mounts (e.g. ``--private-ip``; the stand-in's target).
    proxy_extra_args: tuple[str, ...] = ()
    proxy_extra_mounts: Mapping[str, str] = field(default_factory=dict)
    proxy_timeout: float = 60.0


@dataclass(frozen=True)
class PermissionGap:
    """One permission the member lacks, the role that grants it and the admin's command."""

    permission: str
    role: str
    resource: str
    command: str


class MissingPermissionsError(PermissionDeniedError):
    """The member lacks permissions; ``gaps`` lists each with the admin's grant command."""

    def __init__(self, member: str, gaps: list[PermissionGap]) -> None:
        named = ", ".join(f"{g.permission} on {g.resource} (granted by {g.role})" for g in gaps)
        commands = sorted({g.command for g in gaps})
        super().__init__(
            f"{member} is missing {len(gaps)} permission(s): {named}",
            "ask a project admin to run:\n  " + "\n  ".join(commands)
            + "\nthen re-run `collab join`",
        )
        self.member = member
        self.gaps = tuple(gaps)


@dataclass(frozen=True)
class JoinPlan:
    """Everything :func:`apply_join` will do, decided from reads only."""

    root: Path
    gcp: GcpConfig
    member: str  # IAM principal, e.g. user:alice@example.com
    db_user: str  # the MySQL login of the member's IAM database user
    credentials_source: str
    credentials_file: Path | None
    connector: Connector
    connector_reason: str
    port: int | None
    image: str | None
    artifact_uri: str
    init_needed: bool
    local_before: LocalConfig
    local_after: LocalConfig
    proxy_before: px.ProxyStatus | None
    changes: tuple[str, ...]
    extra_args: tuple[str, ...] = ()
    extra_mounts: Mapping[str, str] = field(default_factory=dict)
    proxy_timeout: float = 60.0

    @property
    def metadata(self) -> MetadataConfig:
        """The metadata settings the member will use once joined."""
        return _effective_metadata(self.root, self.local_after)


@dataclass(frozen=True)
class SchemaCheck:
    revision: str | None
    head: str
    initialised: bool  # this join created the schema in an empty database
    store_id: str | None = None  # the store's identity, recorded in collab.yaml

    @property
    def state(self) -> str:
        from zenml_collab.core.metadata.schema import state_of

        return state_of(self.revision, has_tables=True).value

    @property
    def advice(self) -> str | None:
        if self.state == "behind":
            return "run `collab db upgrade` (back up the shared store first)"
        if self.state == "ahead":
            return "upgrade zenml-collab: a teammate's newer version migrated the store"
        return None


@dataclass(frozen=True)
class JoinResult:
    """What :func:`apply_join` did and verified."""

    plan: JoinPlan
    changed: tuple[str, ...]
    proxy: px.ProxyStatus | None
    schema: SchemaCheck
    probe_object: str
    metadata_description: str

    @property
    def unchanged(self) -> bool:
        return not self.changed

    @property
    def next_steps(self) -> tuple[str, ...]:
        """Commands worth running now that the member has joined."""
        steps = ["collab pipelines list", "collab runs list"]
        if self.schema.state == "behind":
            steps.insert(0, "collab db upgrade")
        if self.proxy is not None:
            steps.append("collab proxy status")
        return (*steps, "collab doctor")


def _effective_metadata(root: Path, local: LocalConfig) -> MetadataConfig:
    return merge_metadata(load_team_config(root).metadata, local.metadata)
