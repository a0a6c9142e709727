"""Team and member configuration.

Two files, layered like DVC's ``config`` / ``config.local``:

* ``collab.yaml`` (committed): team settings only, never a secret.
* ``.collab/local.yaml`` (gitignored, mode 0600): what is personal to one member (proxy port,
  credentials path, a DB username/password for password auth).

Precedence, highest first: explicit arguments (CLI flags) > environment (``COLLAB_*``) >
local file > team file > defaults. :func:`load_settings` is the one place that merges them.

One module per concern: :mod:`.models` (the pydantic models and their merging),
:mod:`.files` (bounded YAML reading, atomic writing) and :mod:`.settings` (the environment's
layer and :func:`load_settings`). Every name is importable from ``zenml_collab.config``.
"""

from __future__ import annotations

from zenml_collab.config.files import (
    MAX_CONFIG_BYTES,
    SafeDumper,
    SafeLoader,
    _atomic_write,
    _dump,
    file_mode,
    format_validation_error,
    load_local_config,
    load_team_config,
    load_yaml_text,
    read_text_file,
    read_yaml,
    write_local_config,
    write_team_config,
)
from zenml_collab.config.models import (
    DEFAULT_PROXY_IMAGE,
    DEFAULT_PROXY_VERSION,
    LOCAL_DIR,
    LOCAL_FILE,
    TEAM_FILE,
    ArtifactsConfig,
    ComputeConfig,
    DockerComputeConfig,
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    ProxyConfig,
    Settings,
    TeamConfig,
    VertexComputeConfig,
    merge_compute,
    merge_metadata,
    parse_connection_name,
)
from zenml_collab.config.settings import _parse_db_url, env_overrides, load_settings, mask_url

__all__ = [
    "DEFAULT_PROXY_IMAGE",
    "DEFAULT_PROXY_VERSION",
    "LOCAL_DIR",
    "LOCAL_FILE",
    "MAX_CONFIG_BYTES",
    "TEAM_FILE",
    "ArtifactsConfig",
    "ComputeConfig",
    "DockerComputeConfig",
    "GcpConfig",
    "LocalConfig",
    "MetadataConfig",
    "ProxyConfig",
    "SafeDumper",
    "SafeLoader",
    "Settings",
    "TeamConfig",
    "VertexComputeConfig",
    "_atomic_write",
    "_dump",
    "_parse_db_url",
    "env_overrides",
    "file_mode",
    "format_validation_error",
    "load_local_config",
    "load_settings",
    "load_team_config",
    "load_yaml_text",
    "mask_url",
    "merge_compute",
    "merge_metadata",
    "parse_connection_name",
    "read_text_file",
    "read_yaml",
    "write_local_config",
    "write_team_config",
]
