"""Reading and writing the config files: bounded YAML (size, UTF-8, no aliases), validation
errors that name the file and the key, and atomic writes (``.collab/local.yaml`` is 0600 from
its first byte)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from zenml_collab.config.models import LOCAL_DIR, LOCAL_FILE, TEAM_FILE, LocalConfig, TeamConfig
from zenml_collab.errors import ConfigError

# libyaml's safe loader/dumper when PyYAML was built with it: ~10x faster than pure Python.
SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SafeDumper(_BaseDumper):
    """Never writes aliases: the loader refuses them (see :func:`load_yaml_text`)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


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
