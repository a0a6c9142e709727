"""Routing and validation from the discovery documents bundled with google-api-python-client.

The same documents the real clients are generated from decide which (method, path) pairs the
fake understands and what a request or response may contain, so the fake cannot drift into
accepting a field Google would reject ("Unknown name ... Cannot find field").
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (document file, short API name used in method keys and fault patterns)
DOCUMENTS: tuple[tuple[str, str], ...] = (
    ("sqladmin.v1.json", "sqladmin"),
    ("sqladmin.v1beta4.json", "sqladmin"),
    ("cloudresourcemanager.v3.json", "resourcemanager"),
    ("serviceusage.v1.json", "serviceusage"),
    ("storage.v1.json", "storage"),
    ("aiplatform.v1.json", "aiplatform"),
    ("iam.v1.json", "iam"),
    ("artifactregistry.v1.json", "artifactregistry"),
)
# Large documents of which the fake serves a few resources: route only those (speed, clarity).
_ONLY: dict[str, tuple[str, ...]] = {
    "aiplatform": ("aiplatform.projects.locations.customJobs.",),
    "iam": ("iam.projects.serviceAccounts.",),
    "artifactregistry": ("artifactregistry.projects.locations.repositories.",
                         "artifactregistry.projects.locations.operations.get"),
}

# Query parameters every Google API accepts besides those in the document (the REST transports
# of the GAPIC clients add `$alt`; media uploads add `name`/`uploadType`).
SYSTEM_PARAMS = frozenset(
    {"alt", "$alt", "fields", "key", "oauth_token", "access_token", "prettyPrint", "quotaUser",
     "userIp", "uploadType", "upload_protocol", "$.xgafv", "callback", "upload_id"}
)


@dataclass(frozen=True)
class Method:
    """One API method of a discovery document, reachable at one path template."""

    api: str
    id: str
    http_method: str
    template: str
    regex: re.Pattern[str]
    specificity: int
    parameters: frozenset[str]
    request_ref: str | None
    response_ref: str | None
    document: str

    @property
    def key(self) -> str:
        """Version-free name, e.g. ``sql.instances.insert``; v1 and v1beta4 share handlers."""
        return _ALIASES.get(self.id, self.id)


# v1beta4 names the ephemeral-cert method differently from v1.
_ALIASES = {"sql.connect.generateEphemeral": "sql.connect.generateEphemeralCert"}


@dataclass(frozen=True)
class Route:
    """A request matched to a method, with its path parameters (percent-decoded)."""

    method: Method
    params: dict[str, str]


def _documents_dir() -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@functools.cache
def load_document(name: str) -> dict[str, Any]:
    """The parsed discovery document ``name`` (e.g. ``storage.v1.json``)."""
    return json.loads((_documents_dir() / name).read_text())


def _compile(template: str) -> tuple[re.Pattern[str], int]:
    pattern = ""
    literal = 0
    for part in re.split(r"(\{[^}]+\})", template):
        if part.startswith("{"):
            pattern += f"(?P<{part.strip('{}+')}>[^/]+)"
        else:
            pattern += re.escape(part)
            literal += len(part)
    return re.compile(f"^/{pattern}$"), literal


def _walk(resources: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in resources.values():
        found.extend(resource.get("methods", {}).values())
        found.extend(_walk(resource.get("resources", {})))
    return found


@functools.cache
def methods() -> tuple[Method, ...]:
    """Every method of every bundled document, most specific path template first."""
    table: list[Method] = []
    for doc_name, api in DOCUMENTS:
        doc = load_document(doc_name)
        service_path = doc["servicePath"]
        for desc in _walk(doc["resources"]):
            if api in _ONLY and not desc["id"].startswith(_ONLY[api]):
                continue
            templates = [service_path + desc.get("flatPath", desc["path"])]
            simple = desc.get("mediaUpload", {}).get("protocols", {}).get("simple", {})
            if simple.get("path"):
                templates.append(simple["path"].lstrip("/"))
            if desc.get("supportsMediaDownload"):
                templates.append("download/" + templates[0])
            for template in templates:
                regex, literal = _compile(template)
                table.append(
                    Method(
                        api=api,
                        id=desc["id"],
                        http_method=desc["httpMethod"],
                        template=template,
                        regex=regex,
                        specificity=literal,
                        parameters=frozenset(desc.get("parameters", {})),
                        request_ref=desc.get("request", {}).get("$ref"),
                        response_ref=desc.get("response", {}).get("$ref"),
                        document=doc_name,
                    )
                )
    table.sort(key=lambda m: -m.specificity)
    return tuple(table)


def match(http_method: str, raw_path: str) -> Route | None:
    """The method serving ``http_method raw_path`` (path still percent-encoded), if any."""
    from urllib.parse import unquote

    for method in methods():
        if method.http_method != http_method:
            continue
        found = method.regex.match(raw_path)
        if found:
            params = {k: unquote(v) for k, v in found.groupdict().items()}
            return Route(method, params)
    if http_method == "PUT" and raw_path.startswith("/upload/storage/v1/b/"):
        # Later chunks of a resumable upload go to the session URI, which the document
        # describes only as the POST that opened it.
        return match("POST", raw_path)
    return None


def validate(value: Any, ref: str, document: str, where: str = "") -> list[str]:
    """Problems of ``value`` against schema ``ref`` of ``document``; empty when valid.

    Messages follow Google's wording for unknown fields so a failing test reads like the
    error the real API would have returned.
    """
    schemas = load_document(document)["schemas"]
    return _check(value, {"$ref": ref}, schemas, where)


def _check(value: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str) -> list[str]:
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type", "any")
    if value is None or kind == "any":
        return []
    at = f" at '{where}'" if where else ""
    if kind == "object":
        if not isinstance(value, dict):
            return [f"Invalid value{at} ({type(value).__name__}), expected an object"]
        problems: list[str] = []
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = f"{where}.{key}" if where else key
            if key in props:
                problems += _check(item, props[key], schemas, child)
            elif extra is not None:
                problems += _check(item, extra, schemas, child)
            else:
                problems.append(f'Unknown name "{key}"{at}: Cannot find field.')
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"Invalid value{at}, expected a list"]
        problems = []
        for i, item in enumerate(value):
            problems += _check(item, schema.get("items", {}), schemas, f"{where}[{i}]")
        return problems
    return _check_scalar(value, schema, kind, at)


def _check_scalar(value: Any, schema: dict[str, Any], kind: str, at: str) -> list[str]:
    numeric_string = kind == "string" and schema.get("format") in {"int64", "uint64", "byte"}
    if kind == "string" and not isinstance(value, str) and not (
        numeric_string and isinstance(value, int)
    ):
        return [f"Invalid value{at} ({value!r}), expected a string"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int | str)):
        return [f"Invalid value{at} ({value!r}), expected an integer"]
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        return [f"Invalid value{at} ({value!r}), expected a number"]
    if kind == "boolean" and not isinstance(value, bool):
        return [f"Invalid value{at} ({value!r}), expected a boolean"]
    if "enum" in schema and isinstance(value, str) and value not in schema["enum"]:
        return [f"Invalid value{at} ({value!r}), not one of the enum values"]
    return []


def unknown_query_params(method: Method, query: dict[str, list[str]]) -> list[str]:
    """Query parameters neither the method nor the system parameters define."""
    return sorted(k for k in query if k not in method.parameters and k not in SYSTEM_PARAMS)
