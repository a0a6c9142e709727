"""What a handler receives (:class:`Call`) and returns (:class:`Reply`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One authenticated API request, matched to a discovery method."""

    method_key: str
    api: str
    http_method: str
    raw_path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: Any
    raw_body: bytes
    headers: dict[str, str]
    email: str
    principal: str  # "serviceAccount:a@b" or "user:a@b", as IAM bindings name it

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    """A handler's answer. ``body`` is JSON (validated against the method's response schema)
    unless ``raw`` is set, in which case it is sent byte for byte (proxied storage calls)."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
