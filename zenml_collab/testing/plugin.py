"""pytest plugin (entry point ``pytest11``): fixtures for the services and fakes zenml-collab tests use.

Each area keeps its fixtures in its own module; this file only gathers them.
"""

from __future__ import annotations

from zenml_collab.testing.fixtures_gcp import *  # noqa: F403
from zenml_collab.testing.fixtures_services import *  # noqa: F403
