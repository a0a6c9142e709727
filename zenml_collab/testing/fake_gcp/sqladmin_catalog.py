"""What Cloud SQL offers: tiers, regions and MySQL database flags, and the checks on them.

A small, fixed catalogue of what zenml-collab may choose; an instance asking for anything else is
refused with a 400 the way Cloud SQL refuses an invalid tier, region or flag.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from zenml_collab.testing.fake_gcp import errors
from zenml_collab.testing.fake_gcp.call import Call, Reply

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP

REGIONS = ("us-central1", "us-east1", "us-west1", "europe-west1", "europe-west3",
           "europe-west4", "europe-north1", "asia-east1", "asia-northeast1", "australia-southeast1")
# tier -> (RAM bytes, disk quota bytes)
TIERS = {
    "db-f1-micro": (644245094, 3078632557772),
    "db-g1-small": (1825361101, 3078632557772),
    "db-n1-standard-1": (3932160000, 30786325577728),
    "db-n1-standard-2": (7864320000, 30786325577728),
    "db-custom-1-3840": (4026531840, 65498251264000),
    "db-custom-2-7680": (8053063680, 65498251264000),
}
_CUSTOM_TIER = re.compile(r"^db-custom-(\d+)-(\d+)$")
# flag -> (type, allowed string values or None)
MYSQL_FLAGS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "cloudsql_iam_authentication": ("BOOLEAN", ("on", "off")),
    "max_connections": ("INTEGER", None),
    "character_set_server": ("STRING", ("utf8mb4", "utf8", "latin1")),
    "sql_mode": ("STRING", None),
    "log_bin_trust_function_creators": ("BOOLEAN", ("on", "off")),
    "wait_timeout": ("INTEGER", None),
    "require_secure_transport": ("BOOLEAN", ("on", "off")),
}
DATABASE_VERSIONS = ("MYSQL_5_7", "MYSQL_8_0", "MYSQL_8_4", "POSTGRES_15", "POSTGRES_16")
# settings.ipConfiguration.sslMode (the discovery document's enum) and the legacy requireSsl
# value each may be paired with, for MySQL and PostgreSQL.
SSL_MODES = {"ALLOW_UNENCRYPTED_AND_ENCRYPTED": False, "ENCRYPTED_ONLY": False,
             "TRUSTED_CLIENT_CERTIFICATE_REQUIRED": True}
DEFAULT_SSL_MODE = "ALLOW_UNENCRYPTED_AND_ENCRYPTED"


def _invalid(message: str) -> errors.GoogleError:
    return errors.error(400, f"Invalid request: {message}", "invalid")


def check_instance(body: dict[str, Any], *, creating: bool) -> None:
    """Refuse an unknown region, database version, tier or database flag."""
    if creating:
        region = body.get("region", "us-central1")
        if region not in REGIONS:
            raise _invalid(f"Region ({region}) is not valid.")
        version = body.get("databaseVersion", "MYSQL_8_0")
        if version not in DATABASE_VERSIONS:
            raise _invalid(f"Invalid database version ({version}).")
    settings = body.get("settings") or {}
    tier = settings.get("tier")
    if tier is not None and tier not in TIERS and not _CUSTOM_TIER.match(tier):
        raise _invalid(f"Invalid Tier ({tier}) for (SECOND_GEN) Edition (ENTERPRISE).")
    _check_ssl(settings.get("ipConfiguration") or {})
    for flag in settings.get("databaseFlags") or []:
        name, value = flag.get("name", ""), flag.get("value", "")
        if name not in MYSQL_FLAGS:
            raise _invalid(f"Flag '{name}' is not supported for this database version.")
        kind, allowed = MYSQL_FLAGS[name]
        if (allowed and value not in allowed) or (kind == "INTEGER" and not value.isdigit()):
            raise _invalid(f"Invalid flag value ({value}) for flag ({name}).")


def _check_ssl(ip: dict[str, Any]) -> None:
    """Refuse an unknown sslMode, or a legacy requireSsl that contradicts it (as Google does)."""
    mode = ip.get("sslMode")
    if mode is None:
        return
    if mode not in SSL_MODES:
        raise _invalid(f"Invalid value for sslMode ({mode}).")
    if "requireSsl" in ip and bool(ip["requireSsl"]) is not SSL_MODES[mode]:
        raise _invalid(f"sslMode ({mode}) conflicts with requireSsl ({ip['requireSsl']}).")


def list_tiers(fake: FakeGCP, call: Call) -> Reply:
    items = [{"kind": "sql#tier", "tier": tier, "RAM": str(ram), "DiskQuota": str(disk),
              "region": list(REGIONS)} for tier, (ram, disk) in TIERS.items()]
    return Reply(body={"kind": "sql#tiersList", "items": items})


def list_flags(fake: FakeGCP, call: Call) -> Reply:
    items = []
    for name, (kind, allowed) in MYSQL_FLAGS.items():
        item: dict[str, Any] = {"kind": "sql#flag", "name": name, "type": kind,
                                "appliesTo": ["MYSQL_8_0", "MYSQL_8_4"],
                                "requiresRestart": False}
        if allowed and kind == "STRING":
            item["allowedStringValues"] = list(allowed)
        items.append(item)
    return Reply(body={"kind": "sql#flagsList", "items": items})


HANDLERS = {"sql.tiers.list": list_tiers, "sql.flags.list": list_flags}
