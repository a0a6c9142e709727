"""pytest fixtures for the Google Cloud fake (:mod:`zenml_collab.testing.fake_gcp`).

``fake_gcp``
    A started :class:`~zenml_collab.testing.fake_gcp.FakeGCP`, fresh per test. Useful members:

    - ``fake_gcp.url`` / ``fake_gcp.env``: base URL and the endpoint env vars
      (``COLLAB_SQLADMIN_ENDPOINT``, ``COLLAB_RESOURCEMANAGER_ENDPOINT``,
      ``COLLAB_SERVICEUSAGE_ENDPOINT``, ``STORAGE_EMULATOR_HOST``, ``NO_GCE_CHECK``).
    - ``add_project(project_id, owner=email)``, ``grant(project, role, member)``.
    - ``add_member(email, roles=[...], project=...) -> Path``: service-account key file (mode
      0600) whose ``token_uri`` is the fake; ``kind="user"`` writes an authorized-user file
      (google-auth ignores ``token_uri`` there: use ``.with_token_uri(fake_gcp.token_uri)``).
    - ``token_for(email)``: a bearer token for ``google.oauth2.credentials.Credentials(token=)``.
    - ``requests``: the log (``method, path, status, member, method_id, mutating``);
      ``mutating_requests()``.
    - ``inject(pattern, status=503, times=1, latency=0, drop=False, expire_token=False)``.
    - ``disable_service(project, "sqladmin.googleapis.com")``, ``enable_service(...)``.
    - ``set_instance_state(project, instance, "SUSPENDED")``, ``operation_polls["CREATE"] = n``.
    - ``attach_mysql(url)``: the MySQL server behind every instance (for the connector).
    - ``storage``: bucket IAM / UBLA / PAP front over fake-gcs-server (started on first use);
      ``storage.create_bucket(name, project)``.

    At teardown the test fails if the fake saw an unknown route or a request or response
    field its discovery document does not define (``fake_gcp.violations``).

``fake_gcp_env``
    ``fake_gcp`` with its ``env`` set through ``monkeypatch`` (and
    ``GOOGLE_APPLICATION_CREDENTIALS`` unset so nothing falls back to a real account).

``fake_gcp_mysql``
    ``fake_gcp`` with ``COLLAB_TEST_MYSQL_URL`` attached; skips when the variable is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from zenml_collab.testing.fake_gcp import FakeGCP

__all__ = ["fake_gcp", "fake_gcp_env", "fake_gcp_mysql"]


@pytest.fixture
def fake_gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCP]:
    fake = FakeGCP(workdir=tmp_path_factory.mktemp("fake-gcp"))
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    if fake.violations:
        pytest.fail("fake GCP saw calls Google would reject:\n  " + "\n  ".join(fake.violations))


@pytest.fixture
def fake_gcp_env(fake_gcp: FakeGCP, monkeypatch: pytest.MonkeyPatch) -> FakeGCP:
    for name, value in fake_gcp.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return fake_gcp


@pytest.fixture
def fake_gcp_mysql(fake_gcp: FakeGCP) -> FakeGCP:
    url = os.environ.get("COLLAB_TEST_MYSQL_URL")
    if not url:
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run under scripts/test for MariaDB)")
    fake_gcp.attach_mysql(url)
    return fake_gcp
