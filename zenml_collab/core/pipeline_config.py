"""The declarative, committed form of a pipeline: ``pipelines/<slug>.yaml``.

Any member can rebuild and re-run a pipeline from this file alone (plus the code it names).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zenml_collab.config import (
    SafeDumper,
    format_validation_error,
    load_yaml_text,
    read_text_file,
)
from zenml_collab.core.hashing import sha256_json
from zenml_collab.errors import ConfigError

PIPELINES_DIR = "pipelines"
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
BACKENDS = ("local", "docker", "vertex")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def slugify(name: str) -> str:
    """``'Pipeline A'`` -> ``'pipeline-a'``: the file name of a pipeline's config."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ConfigError(f"pipeline name {name!r} has no letters or digits",
                          "choose a name such as 'Pipeline A'")
    return slug


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepConfig(_Model):
    name: str
    step: str = Field(description="import path module:qualname")
    params: dict[str, Any] = {}
    inputs: dict[str, str] = {}
    code_hash: str | None = None
    # Where the step executes (local, docker, vertex): recorded, never part of identity or key.
    backend: str | None = None

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        if value is not None and value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; use one of {', '.join(BACKENDS)}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STEP_NAME.match(value):
            raise ValueError("step names use letters, digits, '_' and '-' only")
        return value

    @field_validator("step")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _IMPORT_PATH.match(value):
            raise ValueError("expected an import path like 'package.module:function'")
        return value


class CreatedInfo(_Model):
    by: str | None = None
    at: str | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None


class PipelineConfig(_Model):
    format: Literal[1] = 1
    name: str = Field(min_length=1)
    kind: Literal["pipeline", "training"] = "pipeline"
    steps: list[StepConfig]
    created: CreatedInfo | None = None

    def identity(self) -> str:
        """Hash of what makes a pipeline *this* pipeline: its steps, wiring and parameters.

        Code hashes and creation info are recorded, not compared: editing a step's code is
        a reason to re-execute it, not a different pipeline.
        """
        return sha256_json({
            "name": self.name,
            "kind": self.kind,
            "steps": [s.model_dump(include={"name", "step", "params", "inputs"}) for s in self.steps],
        })


def config_path(root: Path, name: str) -> Path:
    return root / PIPELINES_DIR / f"{slugify(name)}.yaml"


def load_pipeline_config(path: Path) -> PipelineConfig:
    try:
        text = read_text_file(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{path} does not exist",
                          "list pipelines with `collab pipelines list`") from None
    # A committed file: teammates' bytes. Bounded, UTF-8, no aliases (config.load_yaml_text).
    data = load_yaml_text(text, path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with 'name' and 'steps'",
                          f"restore it with `git checkout -- {path.name}`")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(path, exc) from None


def dump_pipeline_config(config: PipelineConfig) -> str:
    import yaml

    data = config.model_dump(mode="json", exclude_none=True)
    header = ("# zenml-collab pipeline config: commit it. Pipelines are immutable once run;\n"
              "# change one with Repository().get_pipeline_by_name(...).copy(new_name=...).\n")
    return header + yaml.dump(data, Dumper=SafeDumper, sort_keys=False, allow_unicode=True)
