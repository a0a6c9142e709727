"""Moved to :mod:`zenml_collab.google.retry` (the Google access layer shared by core and infra);
this name stays so existing imports keep working."""

from zenml_collab.google.retry import *  # noqa: F403
