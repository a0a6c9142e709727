"""A moto-style fake of the Google Cloud APIs zenml-collab uses, for tests and manual runs.

One HTTP server (``FakeGCP``) with state per fake project serves Cloud SQL Admin (v1 and
v1beta4), Resource Manager v3 IAM, Service Usage v1, Cloud Storage (bucket IAM, UBLA and public
access prevention in front of fake-gcs-server) and an OAuth2 token endpoint. Requests and
responses are checked against the discovery documents bundled with google-api-python-client.

Run it by hand with ``python -m zenml_collab.testing.fake_gcp --port 8089``; in tests use the
``fake_gcp`` / ``fake_gcp_env`` fixtures of :mod:`zenml_collab.testing.fixtures_gcp`.
"""

from __future__ import annotations

from zenml_collab.testing.fake_gcp.fake import FakeGCP
from zenml_collab.testing.fake_gcp.server import LoggedRequest

__all__ = ["FakeGCP", "LoggedRequest"]
