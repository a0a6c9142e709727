"""Google Cloud names, checked against Google's documented formats before any API call.

Every value a user (or a committed ``collab.yaml``) gives for a project, region, Cloud SQL
instance, database, tier, bucket or IAM member goes through one of these functions before it
reaches a request, a SQL statement or a shell command we print. A malformed value raises
:class:`~zenml_collab.errors.ConfigError` (exit 1) whose message names the value and whose hint
states the expected format with an example::

    >>> check_instance("zenml-metadata", project="my-proj")
    'zenml-metadata'
    >>> check_tier("db-$(id)")
    Traceback (most recent call last):
    ...
    zenml_collab.errors.ConfigError: invalid Cloud SQL tier 'db-$(id)'
    hint: expected db- followed by lowercase letters, digits and hyphens, e.g. db-custom-1-3840 or db-f1-micro

The checks are syntactic: whether a region or tier exists is Google's answer to give.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from zenml_collab.errors import ConfigError

# project ids; legacy domain-scoped ones are "example.com:my-proj"
_PROJECT = re.compile(r"^(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2,20}-[a-z]{2,20}[0-9]{1,2}$")
_INSTANCE = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
_DATABASE = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
_TIER = re.compile(r"^db-[a-z0-9]+(?:-[a-z0-9]+)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
MEMBER_KINDS = ("user", "serviceAccount", "group")
# Cloud SQL: "project-id:instance-id" is at most 98 characters.
_INSTANCE_WITH_PROJECT_MAX = 98
_SHOWN = 80


def _shown(value: str) -> str:
    """The value as an error message shows it: quoted, bounded (input may be huge or hostile)."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def _invalid(what: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"invalid {what} {_shown(value)}", f"expected {expected}")


def check_project(value: str) -> str:
    """A project id: 6-30 lowercase letters, digits or hyphens, a letter first, no hyphen last."""
    if not _PROJECT.fullmatch(value):
        raise _invalid("Google Cloud project id", value,
                       "6 to 30 lowercase letters, digits or hyphens, starting with a letter "
                       "and not ending with a hyphen, e.g. my-project-123")
    return value


def check_region(value: str) -> str:
    """A region such as ``europe-west1`` or ``us-central1`` (not a zone)."""
    if not _REGION.fullmatch(value):
        raise _invalid("region", value, "a region (not a zone such as europe-west1-b): "
                                        "lowercase, e.g. europe-west1 or us-central1")
    return value


def check_instance(value: str, *, project: str | None = None) -> str:
    """A Cloud SQL instance id: lowercase letters, digits and hyphens, a letter first, no hyphen
    last; ``project:instance`` at most 98 characters."""
    budget = _INSTANCE_WITH_PROJECT_MAX - (len(project) + 1 if project else 0)
    if not _INSTANCE.fullmatch(value) or len(value) > budget:
        raise _invalid("Cloud SQL instance id", value,
                       "lowercase letters, digits and hyphens, starting with a letter and not "
                       "ending with a hyphen, at most 98 characters together with the project "
                       "id, e.g. zenml-metadata")
    return value


def check_connection_name(value: str) -> tuple[str, str, str]:
    """``project:region:instance`` with each part checked; returns the three parts."""
    parts = value.split(":")
    if len(parts) == 4:  # domain-scoped project
        parts = [f"{parts[0]}:{parts[1]}", parts[2], parts[3]]
    if len(parts) != 3:
        raise _invalid("instance connection name", value,
                       "project:region:instance, e.g. my-proj:europe-west1:zenml-metadata")
    project, region, instance = parts
    return check_project(project), check_region(region), check_instance(instance,
                                                                        project=project)


def check_database(value: str) -> str:
    """A MySQL database name Cloud SQL accepts: 1-64 letters, digits, ``_``, ``$`` or ``-``
    (never a quote, backtick, space or dot: it is quoted into GRANT statements)."""
    if not _DATABASE.fullmatch(value):
        raise _invalid("database name", value,
                       "1 to 64 letters, digits, '_', '$' or '-' (no quotes, backticks, "
                       "spaces or dots), e.g. zenml")
    return value


def check_tier(value: str) -> str:
    """A Cloud SQL machine tier: ``db-`` then lowercase letters, digits and single hyphens."""
    if len(value) > 64 or not _TIER.fullmatch(value):
        raise _invalid("Cloud SQL tier", value,
                       "db- followed by lowercase letters, digits and hyphens, e.g. "
                       "db-custom-1-3840 or db-f1-micro")
    return value


def check_bucket(value: str) -> str:
    """A GCS bucket name, by Google's naming rules.

    3-63 characters (up to 222 with dots, each dot-separated part at most 63) of lowercase
    letters, digits, ``-``, ``_`` and ``.``, a letter or digit first and last; not an IP
    address; not starting with ``goog``; not containing ``google``.
    """
    expected = ("3 to 63 lowercase letters, digits, '-', '_' or '.' (up to 222 with dots), "
                "starting and ending with a letter or digit, not an IP address, not starting "
                "with 'goog' nor containing 'google', e.g. my-proj-zenml-artifacts")
    limit = 222 if "." in value else 63
    parts = value.split(".")
    if (not 3 <= len(value) <= limit or not _BUCKET.fullmatch(value) or ".." in value
            or any(len(p) > 63 for p in parts) or value.startswith("goog")
            or "google" in value or _is_ip(value)):
        raise _invalid("bucket name", value, expected)
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_member(value: str, *, kinds: Iterable[str] = MEMBER_KINDS) -> str:
    """An IAM member ``user:EMAIL``, ``serviceAccount:EMAIL`` or ``group:EMAIL`` (``kinds``
    narrows the accepted prefixes)."""
    allowed = tuple(kinds)
    kind, sep, email = value.partition(":")
    if not sep or kind not in allowed or len(email) > 254 or not _EMAIL.fullmatch(email):
        examples = {"user": "user:alice@example.com",
                    "serviceAccount": "serviceAccount:sa@my-proj.iam.gserviceaccount.com",
                    "group": "group:team@example.com"}
        raise _invalid("member", value, "KIND:EMAIL with KIND one of " + ", ".join(allowed)
                       + ", e.g. " + " or ".join(examples[k] for k in allowed if k in examples))
    return value
