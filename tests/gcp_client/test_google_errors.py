"""The one Google classifier and the shared access layer (zenml_collab.google).

The exceptions are the libraries' own classes, built as the libraries build them; the
end-to-end paths (connector, storage, doctor) are in tests/reliability/test_faults_google.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zenml_collab.errors import CollabError, ConnectivityError, CredentialsError
from zenml_collab.google.errors import (
    GooglePermissionError,
    NotFoundError,
    ServiceDisabledError,
    classify,
)

MEMBER = "serviceAccount:m@p.iam.gserviceaccount.com"


def _connector_error(status: int, message: str, call: str) -> BaseException:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL(f"https://sqladmin.googleapis.com/sql/v1beta4/projects/p/instances/i:{call}")
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientResponseError(info, (), status=status, message=message)


def test_a_connector_403_names_roles_cloudsql_client_and_the_grant_command() -> None:
    exc = _connector_error(403, "The client is not authorized to make this request.",
                           "generateEphemeralCert")
    error = classify(exc, action="connect", resource="p:r:i", project="p", member=MEMBER)
    assert isinstance(error, GooglePermissionError) and error.exit_code == 3
    assert "cloudsql.instances.connect" in error.message
    assert (f"gcloud projects add-iam-policy-binding p --member={MEMBER} "
            "--role=roles/cloudsql.client") in (error.hint or "")


def test_a_disabled_api_seen_by_the_connector_gives_the_enable_command() -> None:
    message = ("Cloud SQL Admin API has not been used in project 123 before or it is disabled. "
               "Enable it by visiting https://console.developers.google.com/apis/api/"
               "sqladmin.googleapis.com/overview?project=123 then retry.")
    error = classify(_connector_error(403, message, "connectSettings"), action="connect",
                     resource="p:r:i", project="p")
    assert isinstance(error, ServiceDisabledError) and error.exit_code == 1
    assert "gcloud services enable sqladmin.googleapis.com --project p" in (error.hint or "")


def test_refused_credentials_are_a_credentials_error_with_the_login_command() -> None:
    from google.auth.exceptions import RefreshError

    error = classify(RefreshError("invalid_grant"), action="list", resource="gs://b")
    assert isinstance(error, CredentialsError) and error.exit_code == 3
    assert "gcloud auth application-default login" in (error.hint or "")


def test_an_exhausted_retry_is_a_connectivity_error() -> None:
    from google.api_core import exceptions as gexc

    error = classify(gexc.RetryError("deadline", gexc.ServiceUnavailable("busy")),
                     action="list", resource="gs://b")
    assert isinstance(error, ConnectivityError) and error.exit_code == 4


def test_a_bucket_403_asks_for_the_one_member_bucket_role() -> None:
    from google.api_core import exceptions as gexc

    exc = gexc.Forbidden(f"{MEMBER} does not have storage.objects.get access to the object.")
    error = classify(exc, action="read", resource="gs://b", bucket="b", member=MEMBER)
    assert "roles/storage.objectAdmin" in (error.hint or "")
    assert "objectViewer" not in (error.hint or "")
    assert "gcloud storage buckets add-iam-policy-binding gs://b" in (error.hint or "")


def test_a_404_is_not_found_with_the_callers_hint() -> None:
    from google.api_core import exceptions as gexc

    error = classify(gexc.NotFound("no bucket"), action="list", resource="gs://b",
                     not_found_hint="check artifacts.uri")
    assert isinstance(error, NotFoundError) and error.hint == "check artifacts.uri"


def test_the_storage_client_is_built_once_per_process_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zenml_collab.google.access import google_access

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    access = google_access()
    assert access is google_access() and access.anonymous_storage
    client = access.storage_client()
    assert client is access.storage_client()
    client.close()


def test_an_unreadable_credentials_file_is_a_credentials_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from zenml_collab.google.access import GoogleAccess

    bad = tmp_path / "key.json"
    bad.write_text(json.dumps({"type": "nonsense"}))
    with pytest.raises(CollabError) as raised:
        GoogleAccess(credentials_file=str(bad)).credentials  # noqa: B018
    assert str(bad) in raised.value.message and raised.value.exit_code == 3
