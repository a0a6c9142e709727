"""Where each Google API lives: Google's default, or a test fake named by the environment.

Each function returns ``None`` for "use the library's default endpoint", so product code passes
the value straight into ``client_options`` only when it is set.
"""

from __future__ import annotations

import os

SQLADMIN_ENV = "COLLAB_SQLADMIN_ENDPOINT"
RESOURCEMANAGER_ENV = "COLLAB_RESOURCEMANAGER_ENDPOINT"
SERVICEUSAGE_ENV = "COLLAB_SERVICEUSAGE_ENDPOINT"
STORAGE_ENV = "STORAGE_EMULATOR_HOST"


def _get(name: str) -> str | None:
    return os.environ.get(name) or None


def sqladmin_endpoint() -> str | None:
    """Cloud SQL Admin base URL (``COLLAB_SQLADMIN_ENDPOINT``), e.g. ``http://127.0.0.1:9/``."""
    return _get(SQLADMIN_ENV)


def resourcemanager_endpoint() -> str | None:
    """Resource Manager base URL (``COLLAB_RESOURCEMANAGER_ENDPOINT``)."""
    return _get(RESOURCEMANAGER_ENV)


def serviceusage_endpoint() -> str | None:
    """Service Usage base URL (``COLLAB_SERVICEUSAGE_ENDPOINT``)."""
    return _get(SERVICEUSAGE_ENV)


def storage_endpoint() -> str | None:
    """Cloud Storage base URL (``STORAGE_EMULATOR_HOST``, the variable the library knows)."""
    value = _get(STORAGE_ENV)
    if value and not value.startswith(("http://", "https://")):
        value = f"http://{value}"
    return value
