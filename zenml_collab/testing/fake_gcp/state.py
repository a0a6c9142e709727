"""The fake's state: plain dataclasses behind one lock (``World.lock``).

Handlers take the lock for the whole read-modify-write of a request, so concurrent clients see
the same serialised behaviour a real API gives them (and etag conflicts stay deterministic).
"""

from __future__ import annotations

import base64
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SERVICE_TITLES = {
    "sqladmin.googleapis.com": "Cloud SQL Admin API",
    "storage.googleapis.com": "Cloud Storage API",
    "storage-api.googleapis.com": "Google Cloud Storage JSON API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "serviceusage.googleapis.com": "Service Usage API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "aiplatform.googleapis.com": "Vertex AI API",
    "artifactregistry.googleapis.com": "Artifact Registry API",
}
DEFAULT_SERVICES = frozenset(SERVICE_TITLES)

# Which service a call of each API needs to be enabled in the resource's project.
API_SERVICE = {
    "sqladmin": "sqladmin.googleapis.com",
    "storage": "storage.googleapis.com",
    "resourcemanager": "cloudresourcemanager.googleapis.com",
    "aiplatform": "aiplatform.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
}


def now_rfc3339() -> str:
    """Current UTC time as Google formats it (``2024-01-01T00:00:00.000Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def etag_for(version: int) -> str:
    """A base64 etag (the APIs send bytes as base64) that changes with each policy write."""
    return base64.b64encode(b"\x00fake" + version.to_bytes(4, "big")).decode()


@dataclass
class Policy:
    """An IAM policy: role -> members, plus the version counter its etag is derived from."""

    bindings: dict[str, list[str]] = field(default_factory=dict)
    version: int = 1

    @property
    def etag(self) -> str:
        return etag_for(self.version)

    def grant(self, role: str, member: str) -> None:
        members = self.bindings.setdefault(role, [])
        if member not in members:
            members.append(member)
        self.version += 1

    def to_json(self) -> list[dict[str, Any]]:
        return [{"role": r, "members": list(m)} for r, m in sorted(self.bindings.items()) if m]

    def replace(self, bindings: list[dict[str, Any]]) -> None:
        self.bindings = {}
        for binding in bindings:
            self.bindings.setdefault(binding["role"], []).extend(binding.get("members", []))
        self.version += 1


@dataclass
class Operation:
    """A Cloud SQL operation; ``remaining`` polls of ``operations.get`` see it unfinished."""

    name: str
    project: str
    operation_type: str
    target: str
    remaining: int
    status: str = "PENDING"
    insert_time: str = field(default_factory=now_rfc3339)
    end_time: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class SqlUser:
    name: str
    host: str
    type: str
    password: str | None = None


@dataclass
class Instance:
    """A Cloud SQL instance; ``resource`` keeps the client-sent fields, ``state`` the status."""

    name: str
    project: str
    region: str
    database_version: str
    resource: dict[str, Any]
    state: str = "PENDING_CREATE"
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[tuple[str, str], SqlUser] = field(default_factory=dict)
    create_time: str = field(default_factory=now_rfc3339)

    @property
    def connection_name(self) -> str:
        return f"{self.project}:{self.region}:{self.name}"

    def flags(self) -> dict[str, str]:
        settings = self.resource.get("settings", {})
        return {f["name"]: f.get("value", "") for f in settings.get("databaseFlags", [])}


@dataclass
class Project:
    project_id: str
    number: str
    policy: Policy = field(default_factory=Policy)
    services: set[str] = field(default_factory=lambda: set(DEFAULT_SERVICES))
    instances: dict[str, Instance] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)


@dataclass
class BucketMeta:
    """What fake-gcs-server does not keep for a bucket: its project, IAM policy, UBLA, PAP."""

    name: str
    project: str
    policy: Policy
    ubla: bool = False
    public_access_prevention: str = "inherited"
    # fake-gcs-server reports every bucket in US-CENTRAL1; Google keeps what was asked for.
    location: str = "US"


class World:
    """All state of one fake, shared by every request thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        self.buckets: dict[str, BucketMeta] = {}
        self._numbers = itertools.count(100000000001)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add_project(self, project_id: str) -> Project:
        with self.lock:
            if project_id not in self.projects:
                self.projects[project_id] = Project(project_id, str(next(self._numbers)))
            return self.projects[project_id]

    def find_project(self, id_or_number: str) -> Project | None:
        """A project by id or by number (Service Usage answers with numbers)."""
        with self.lock:
            if id_or_number in self.projects:
                return self.projects[id_or_number]
            for project in self.projects.values():
                if project.number == id_or_number:
                    return project
            return None

    def default_bucket_policy(self, bucket: str, project: Project) -> BucketMeta:
        """A bucket's IAM policy as GCS creates it: the project's convenience members."""
        pid = project.project_id
        policy = Policy({
            "roles/storage.legacyBucketOwner": [f"projectEditor:{pid}", f"projectOwner:{pid}"],
            "roles/storage.legacyBucketReader": [f"projectViewer:{pid}"],
        })
        return BucketMeta(bucket, pid, policy)
