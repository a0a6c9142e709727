"""The error analysis functions raise for bad input (unknown metric, missing split or column)."""

from __future__ import annotations

from zenml_collab.errors import CollabError


class AnalysisError(CollabError):
    """Bad input to an analysis function: unknown metric, split or slice column, mismatched data."""
