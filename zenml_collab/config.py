"""Team and member configuration.

Two files, layered like DVC's ``config`` / ``config.local``:

* ``collab.yaml`` (committed): team settings only, never a secret.
* ``.collab/local.yaml`` (gitignored, mode 0600): what is personal to one member (proxy port,
  credentials path, a DB username/password for password auth).

Precedence, highest first: explicit arguments (CLI flags) > environment (``COLLAB_*``) >
local file > team file > defaults. :func:`load_settings` is the one place that merges them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from zenml_collab.errors import ConfigError

# libyaml's safe loader/dumper when PyYAML was built with it: ~10x faster than pure Python.
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SafeDumper(_BaseDumper):
    """Never writes aliases: the loader refuses them (see :func:`load_yaml_text`)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

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
    if len(parts) != 3 or not all(parts):
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


class ArtifactsConfig(_Model):
    """Where the artifact store lives: a local folder or ``gs://bucket/prefix``."""

    uri: str = f"{LOCAL_DIR}/artifacts"


class ProxyConfig(_Model):
    image: str = DEFAULT_PROXY_IMAGE
    version: str = DEFAULT_PROXY_VERSION


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


# Config files are small; anything larger is not one of ours (or is an attack on the parser).
MAX_CONFIG_BYTES = 1024 * 1024


def read_text_file(path: Path, *, limit: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of a config file, bounded in size; every failure names the file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, not a file",
                          "remove or rename the directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}",
                          "check the file's permissions") from None
    if len(raw) > limit:
        raise ConfigError(f"{path} is larger than {limit // 1024} KiB, too large for a config file",
                          "restore it with `git checkout`, or check what wrote it")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            "save it as UTF-8, or restore it with `git checkout`") from None


def load_yaml_text(text: str, path: Path | str) -> Any:
    """Parse YAML with bounds: no aliases (an anchor bomb expands to ~10^8 nodes from a few
    hundred bytes), no nesting deep enough to exhaust the stack. Our files never use either."""
    try:
        for event in yaml.parse(text, Loader=SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                mark = getattr(event, "start_mark", None)
                where = f" (line {mark.line + 1})" if mark else ""
                raise ConfigError(
                    f"{path} uses a YAML alias{where}; config files may not use anchors/aliases",
                    "write the values out in full")
        return yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}", "fix the syntax or restore it with `git checkout`"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a config file",
                          "restore it with `git checkout`") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in the YAML file ``path`` (``{}`` if it is missing or empty)."""
    try:
        text = read_text_file(path)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    data = load_yaml_text(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level",
                          "see README: Configuration")
    return data


def format_validation_error(path: Path | str, exc: ValidationError) -> ConfigError:
    """Turn pydantic's error into one that names the file, the key and the fix."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(
        f"{path}: {key}: {msg}{extra}",
        "fix that key (see README: Configuration) or run `collab config validate` for all errors",
    )


def load_team_config(root: Path) -> TeamConfig:
    path = root / TEAM_FILE
    try:
        return TeamConfig.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise format_validation_error(path, exc) from None


def load_local_config(root: Path) -> LocalConfig:
    path = root / LOCAL_DIR / LOCAL_FILE
    try:
        return LocalConfig.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise format_validation_error(path, exc) from None


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
    """
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


def _dump(model: BaseModel) -> str:
    data = model.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    return yaml.dump(data, Dumper=SafeDumper, sort_keys=False)


def write_team_config(root: Path, config: TeamConfig) -> Path:
    path = root / TEAM_FILE
    _atomic_write(path, "# zenml-collab team config: commit this file. Never put a secret here.\n"
                  + _dump(config), mode=0o644)
    return path


def write_local_config(root: Path, config: LocalConfig) -> Path:
    """Write ``.collab/local.yaml`` with mode 0600 (it may hold a password)."""
    path = root / LOCAL_DIR / LOCAL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    # exclude_unset, not exclude_defaults: an explicit `kind: sqlite` here overrides the team's
    # kind even though "sqlite" is the default, so it must survive the round trip.
    data = config.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    if config.metadata is not None and config.metadata.password is not None:
        data["metadata"]["password"] = config.metadata.password.get_secret_value()
    _atomic_write(path, yaml.dump(data, Dumper=SafeDumper, sort_keys=False), mode=0o600)
    return path


def _atomic_write(path: Path, text: str, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # Create with the final mode so a secret is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
