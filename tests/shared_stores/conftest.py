"""Fixtures of the shared-store tests (defined in shared_helpers.py)."""

from shared_helpers import gcs_proxy, mysql_login, steps_on_path

__all__ = ["gcs_proxy", "mysql_login", "steps_on_path"]
