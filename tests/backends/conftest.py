"""Fixtures of the backend tests live in backend_helpers (importable by a unique name)."""

from backend_helpers import mysql_gcs_repo, step_image  # noqa: F401
