"""Moved to :mod:`zenml_collab.google.endpoints` (the Google access layer shared by core and infra);
this name stays so existing imports keep working."""

from zenml_collab.google.endpoints import *  # noqa: F403
