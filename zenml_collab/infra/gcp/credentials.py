"""Find the caller's Google credentials (ADC) and say where they came from.

Order, as google-auth's ``default()``: ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's
application-default credentials file, then the metadata server (on Google Cloud). We resolve the
two files ourselves so the answer can name the file (``collab join`` mounts it read-only into the
proxy container) and so a missing variable target is reported precisely.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zenml_collab.errors import ConnectivityError, CredentialsError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
LOGIN_HINT = ("run `gcloud auth application-default login` "
              "(or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file)")


@dataclass(frozen=True)
class FoundCredentials:
    """Credentials plus where they came from; ``file`` is None for the metadata server."""

    credentials: Any
    project: str | None
    source: str
    account: str | None
    file: Path | None


@dataclass(frozen=True)
class TokenInfo:
    expiry: datetime | None
    account: str | None


def adc_path() -> Path:
    """gcloud's application-default credentials file (honours ``CLOUDSDK_CONFIG``)."""
    config = os.environ.get("CLOUDSDK_CONFIG")
    base = Path(config) if config else Path.home() / ".config" / "gcloud"
    return base / "application_default_credentials.json"


def gcloud_config_value(section: str, key: str) -> str | None:
    """A value of gcloud's active configuration (``gcloud config get section/key``), if set.

    Read from the file rather than by running gcloud: it is fast and gcloud may be absent.
    """
    import configparser

    config = os.environ.get("CLOUDSDK_CONFIG")
    base = Path(config) if config else Path.home() / ".config" / "gcloud"
    active = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME")
    if not active:
        try:
            active = (base / "active_config").read_text(encoding="utf-8").strip() or "default"
        except OSError:
            active = "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(base / "configurations" / f"config_{active}", encoding="utf-8")
    except configparser.Error:
        return None
    return parser.get(section, key, fallback=None) or None


def _account_of(credentials: Any, info: dict[str, Any]) -> str | None:
    return (getattr(credentials, "service_account_email", None)
            or info.get("client_email") or info.get("account") or None)


def _from_file(path: Path, source: str) -> FoundCredentials:
    import google.auth
    import google.auth.exceptions

    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(f"{source}: the file does not exist", LOGIN_HINT) from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"{source}: cannot read it as JSON ({exc})", LOGIN_HINT) from None
    try:
        credentials, project = google.auth.load_credentials_from_file(str(path), scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise CredentialsError(f"{source}: {exc}", LOGIN_HINT) from None
    project = project or info.get("quota_project_id") or None
    return FoundCredentials(credentials, project, source, _account_of(credentials, info), path)


def find_credentials() -> FoundCredentials:
    """The caller's credentials; raises :class:`CredentialsError` with the fix when none."""
    env_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env_file:
        path = Path(env_file).expanduser()
        return _from_file(path, f"GOOGLE_APPLICATION_CREDENTIALS ({path})")
    adc = adc_path()
    if adc.is_file():
        return _from_file(adc, f"gcloud application-default credentials ({adc})")
    import google.auth
    import google.auth.exceptions

    try:
        credentials, project = google.auth.default(scopes=SCOPES)
    except google.auth.exceptions.DefaultCredentialsError:
        raise CredentialsError("no Google credentials found", LOGIN_HINT) from None
    account = getattr(credentials, "service_account_email", None)
    account = account if account and account != "default" else None
    return FoundCredentials(credentials, project, "metadata server", account, None)


def refresh(found: FoundCredentials, request: Any = None) -> TokenInfo:
    """Get a fresh access token now; a refusal raises :class:`CredentialsError`.

    ``request`` is a google-auth transport request (default: a new one), e.g. one whose
    session records the token server's response headers.
    """
    import google.auth.exceptions
    from google.auth.transport.requests import Request

    try:
        found.credentials.refresh(request or Request())
    except google.auth.exceptions.RefreshError as exc:
        raise CredentialsError(f"Google refused the credentials from {found.source}: {exc}",
                               LOGIN_HINT) from None
    except google.auth.exceptions.TransportError as exc:
        raise ConnectivityError(f"cannot reach Google's token endpoint: {exc}",
                                "check your network connection, then re-run") from None
    expiry = found.credentials.expiry
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)  # google-auth keeps naive UTC datetimes
    return TokenInfo(expiry, found.account)
