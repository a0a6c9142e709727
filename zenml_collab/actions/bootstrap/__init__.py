"""`collab bootstrap`: create the team's Cloud SQL instance, database, users, bucket and IAM
bindings, idempotently.

Two phases: :func:`plan` only reads (permissions, APIs, what exists) and returns a frozen,
JSON-able :class:`Plan`; :func:`apply` carries it out and reports progress. ``--dry-run`` is
``plan`` alone. Every step of ``apply`` tolerates "already exists", so an interrupted run (Ctrl-C
while the instance is being created) is finished by running the command again, and a run on a
complete setup plans nothing and makes no mutating call.

With IAM database auth, members' new database users get their database through :mod:`.grants`
(``GRANT`` run as the built-in ``collab-admin`` user); ``--regrant`` grants every member again,
which repairs a run interrupted between creating users and granting them.

In the same login bootstrap sets up the metadata store (:mod:`.store`): a new database gets the
schema and the store's identity, an existing store keeps its id, and the id is written to
``collab.yaml`` (``metadata.store_id``) for the admin to commit.

One module per concern: :mod:`.model` (request, plan and outcome with their JSON and text
shapes, progress, result), :mod:`.planning` (the read-only phase), :mod:`.applying` (the
mutating steps), :mod:`.grants` (the SQL GRANTs), :mod:`.store` (the store's schema and id),
:mod:`.config` (writing ``collab.yaml`` and the admin's password) and :mod:`.command`
(:func:`bootstrap`: the one call the CLI makes).
"""

from __future__ import annotations

from zenml_collab.actions.bootstrap.applying import apply
from zenml_collab.actions.bootstrap.command import bootstrap
from zenml_collab.actions.bootstrap.config import config_root, team_config, write_config
from zenml_collab.actions.bootstrap.grants import grant_statement
from zenml_collab.actions.bootstrap.model import (
    GRANT_ADMIN_USER,
    IAM_FLAG,
    SSL_MODE,
    Action,
    ApplyResult,
    BindingChange,
    BootstrapOutcome,
    BootstrapRequest,
    GrantChange,
    MemberPassword,
    Plan,
    Progress,
    ProgressCallback,
    ResourceChange,
    ServiceState,
    StoreChange,
)
from zenml_collab.actions.bootstrap.planning import (
    PROJECT_STORAGE_ROLES,
    db_user,
    instance_body,
    password_username,
    plan,
)

__all__ = [
    "GRANT_ADMIN_USER",
    "IAM_FLAG",
    "PROJECT_STORAGE_ROLES",
    "SSL_MODE",
    "Action",
    "ApplyResult",
    "BindingChange",
    "BootstrapOutcome",
    "BootstrapRequest",
    "GrantChange",
    "MemberPassword",
    "Plan",
    "Progress",
    "ProgressCallback",
    "ResourceChange",
    "ServiceState",
    "StoreChange",
    "apply",
    "bootstrap",
    "config_root",
    "db_user",
    "grant_statement",
    "instance_body",
    "password_username",
    "plan",
    "team_config",
    "write_config",
]
