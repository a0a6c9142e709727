"""`collab join`: connect this clone to the team's Cloud SQL database and bucket, and prove it.

Two phases, like bootstrap: :func:`plan_join` only reads (credentials, IAM permissions, the
instance, the existing ``.collab/local.yaml``, docker and the proxy container) and fails before
anything changes when the member lacks a permission; :func:`apply_join` then initialises
``.collab/``, starts (or reuses) the proxy, verifies the metadata store and the bucket, and only
then writes ``.collab/local.yaml``. A second join with the same settings changes nothing.

Two ways to reach the database (both log in with IAM database authentication, no password):

* ``proxy``: the Cloud SQL Auth Proxy v2 in a docker container of this repository, published on
  ``127.0.0.1:<port>``; the store is then a ``mysql`` store on that port.
* ``python``: the cloud-sql-python-connector inside each process (no docker needed); the store
  is a ``cloudsql`` store.

No terminal I/O here: progress goes to the ``on_progress`` callback.

One module per concern: :mod:`.model` (request, plan, result and the missing-permissions error),
:mod:`.planning` (the read-only phase), :mod:`.applying` (starting the proxy, writing the local
config, and :func:`join`) and :mod:`.verify` (probing the metadata store and the bucket). The
`collab proxy` actions live in :mod:`zenml_collab.actions.proxy` and are re-exported here.
"""

from __future__ import annotations

from zenml_collab.actions.join.applying import apply_join, join, start_member_proxy
from zenml_collab.actions.join.model import (
    DEFAULT_PROXY_PORT,
    Connector,
    JoinPlan,
    JoinRequest,
    JoinResult,
    MissingPermissionsError,
    PermissionGap,
    Progress,
    SchemaCheck,
)
from zenml_collab.actions.join.planning import (
    check_instance,
    load_team,
    member_principal,
    permission_gaps,
    plan_join,
)
from zenml_collab.actions.join.verify import verify_artifacts, verify_metadata
from zenml_collab.actions.proxy import proxy_logs, proxy_start, proxy_status, proxy_stop

__all__ = [
    "DEFAULT_PROXY_PORT",
    "Connector",
    "JoinPlan",
    "JoinRequest",
    "JoinResult",
    "MissingPermissionsError",
    "PermissionGap",
    "Progress",
    "SchemaCheck",
    "apply_join",
    "check_instance",
    "join",
    "load_team",
    "member_principal",
    "permission_gaps",
    "plan_join",
    "proxy_logs",
    "proxy_start",
    "proxy_status",
    "proxy_stop",
    "start_member_proxy",
    "verify_artifacts",
    "verify_metadata",
]
