"""The configuration models: ``collab.yaml`` (:class:`TeamConfig`), ``.collab/local.yaml``
(:class:`LocalConfig`), their sections and the merged :class:`Settings`; pydantic, frozen,
validated on load."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from zenml_collab.errors import ConfigError

TEAM_FILE = "collab.yaml"
LOCAL_DIR = ".collab"
LOCAL_FILE = "local.yaml"
DEFAULT_PROXY_IMAGE = "gcr.io/cloud-sql-connectors/cloud-sql-proxy"
DEFAULT_PROXY_VERSION = "2.14.1"

_CONNECTION_NAME = re.compile(r"^[a-z][a-z0-9:.\-]*[a-z0-9]:[a-z]+-[a-z]+[0-9]:[a-z][a-z0-9\-]*$")


def parse_connection_name(value: str) -> tuple[str, str, str]:
    """Split ``project:region:instance``; the error shows the expected format.

    >>> parse_connection_name("my-proj:europe-west1:zenml-metadata")
    ('my-proj', 'europe-west1', 'zenml-metadata')
    """
    parts = value.split(":")
    # Domain-scoped projects look like "example.com:proj", hence 3 or 4 parts.
    if len(parts) == 4:
        parts = [f"{parts[0]}:{parts[1]}", parts[2], parts[3]]
    # No part starts with '-' or holds whitespace or control characters: a committed
    # "--sqladmin-api-endpoint=https://host/x:r:i" would reach the proxy as a flag. (Google's
    # exact formats are checked where a name is set: zenml_collab.names.)
    if len(parts) != 3 or not all(re.fullmatch(r"[^\s\x00-\x1f\x7f-][^\s\x00-\x1f\x7f]*", piece)
                                  for part in parts for piece in part.split(":")):
        raise ConfigError(
            f"invalid instance connection name {value!r}",
            "expected the format project:region:instance, e.g. my-proj:europe-west1:zenml-metadata "
            "(see `gcloud sql instances describe INSTANCE --format='value(connectionName)'`)",
        )
    return parts[0], parts[1], parts[2]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetadataConfig(_Model):
    """Where the metadata store lives."""

    kind: Literal["sqlite", "mysql", "cloudsql"] = "sqlite"
    path: str | None = None  # sqlite; relative paths are relative to the repo root
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    instance: str | None = None  # cloudsql connection name
    auth: Literal["iam", "password"] = "iam"
    connector: Literal["proxy", "python"] | None = None
    # The team store's identity (written by bootstrap/join/config): a database with another
    # id, or an empty one, is refused instead of being initialised (the port-3306 trap).
    store_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("instance")
    @classmethod
    def _check_instance(cls, value: str | None) -> str | None:
        if value is not None:
            parse_connection_name(value)
        return value

    def sqlite_file(self, root: Path) -> Path:
        """The database file of an embedded store (a relative path is relative to ``root``)."""
        path = Path(self.path or f"{LOCAL_DIR}/metadata.db")
        return path if path.is_absolute() else root / path


class ArtifactsConfig(_Model):
    """Where the artifact store lives: a local folder or ``gs://bucket/prefix``."""

    uri: str = f"{LOCAL_DIR}/artifacts"


class ProxyConfig(_Model):
    """The Cloud SQL Auth Proxy image (collab.yaml): Google's own, at a version the team picks.

    The image receives the member's Google credentials file, so a committed file cannot name
    another one (a teammate's image would read every member's refresh token). A member who
    needs a mirror names it for themselves, in the environment: ``COLLAB_PROXY_IMAGE``.
    """

    image: str = DEFAULT_PROXY_IMAGE
    version: str = Field(default=DEFAULT_PROXY_VERSION, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

    @field_validator("image")
    @classmethod
    def _official(cls, value: str) -> str:
        if value != DEFAULT_PROXY_IMAGE:
            raise ValueError(
                f"{value[:120]!r} is not Google's Cloud SQL Auth Proxy image; it would receive "
                f"your Google credentials. collab.yaml may only pin a version of "
                f"{DEFAULT_PROXY_IMAGE}; to use a mirror, set COLLAB_PROXY_IMAGE on your "
                f"machine")
        return value


class DockerComputeConfig(_Model):
    """The ``docker`` backend: a container on the member's own dockerd."""

    image: str | None = None  # default: compute.image


class VertexComputeConfig(_Model):
    """The ``vertex`` backend: a Vertex AI custom job per executed step."""

    project: str | None = None  # default: gcp.project
    region: str | None = None  # default: gcp.region
    machine_type: str = "n1-standard-4"
    accelerator_type: str | None = None  # e.g. NVIDIA_TESLA_T4
    accelerator_count: int = Field(default=0, ge=0, le=16)
    service_account: str | None = None  # the runner account jobs run as
    image: str | None = None  # default: compute.image (an Artifact Registry path)


class ComputeConfig(_Model):
    """Where steps execute (``compute:`` in collab.yaml, overridable in .collab/local.yaml)."""

    backend: Literal["local", "docker", "vertex"] = "local"  # for steps that name none
    max_parallel: int = Field(default=4, ge=1, le=64)
    image: str | None = None  # the image `collab image build` recorded (tag or digest)
    docker: DockerComputeConfig = DockerComputeConfig()
    vertex: VertexComputeConfig = VertexComputeConfig()


def merge_compute(team: ComputeConfig, local: ComputeConfig | None) -> ComputeConfig:
    """The member's compute settings: keys set in ``local.yaml`` win over the team's."""
    if local is None:
        return team
    merged = team.model_dump()
    for key, value in local.model_dump(exclude_unset=True).items():
        if isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return ComputeConfig.model_validate(merged)


class GcpConfig(_Model):
    project: str
    region: str
    instance: str  # connection name project:region:instance
    database: str = "zenml"
    db_auth: Literal["iam", "password"] = "iam"
    bucket: str
    members: tuple[str, ...] = ()

    @field_validator("instance")
    @classmethod
    def _check_instance(cls, value: str) -> str:
        parse_connection_name(value)
        return value


class TeamConfig(_Model):
    """The committed ``collab.yaml``."""

    version: Literal[1] = 1
    gcp: GcpConfig | None = None
    metadata: MetadataConfig = MetadataConfig()
    artifacts: ArtifactsConfig = ArtifactsConfig()
    proxy: ProxyConfig = ProxyConfig()
    compute: ComputeConfig = ComputeConfig()

    @field_validator("metadata")
    @classmethod
    def _no_secrets(cls, value: MetadataConfig) -> MetadataConfig:
        if value.password is not None:
            raise ValueError(
                "a password must never be in collab.yaml; move it to .collab/local.yaml "
                "with `collab config metadata set ... --password-stdin`"
            )
        return value


class LocalConfig(_Model):
    """The member's ``.collab/local.yaml`` (mode 0600)."""

    version: Literal[1] = 1
    metadata: MetadataConfig | None = None
    artifacts: ArtifactsConfig | None = None
    credentials_file: str | None = None
    proxy_port: int | None = Field(default=None, ge=1, le=65535)
    connector: Literal["proxy", "python"] | None = None
    compute: ComputeConfig | None = None


class Settings(_Model):
    """The merged, effective settings a command works with."""

    root: Path
    metadata: MetadataConfig
    artifacts: ArtifactsConfig
    team: TeamConfig
    local: LocalConfig


def merge_metadata(*layers: MetadataConfig | dict[str, Any] | None) -> MetadataConfig:
    """Merge metadata layers lowest precedence first; a change of ``kind`` resets the rest."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        values = layer if isinstance(layer, dict) else layer.model_dump(exclude_unset=True)
        if "kind" in values and values["kind"] != merged.get("kind", values["kind"]):
            merged = {}
        merged.update({k: v for k, v in values.items() if v is not None})
    return MetadataConfig.model_validate(merged)
