"""Proof that joining worked: the metadata store opens and the bucket takes a probe object."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.actions.join.model import SchemaCheck
from zenml_collab.config import MetadataConfig
from zenml_collab.errors import CollabError, ConnectivityError, PermissionDeniedError

if TYPE_CHECKING:
    from zenml_collab.infra.gcp.clients import GcpClients


def verify_metadata(cfg: MetadataConfig, root: Path, member: str) -> tuple[SchemaCheck, str]:
    """Open the store, read its schema state; initialise an empty database (never migrate).

    When ``collab.yaml`` names the team's store (``metadata.store_id``), the database must be
    that store: an empty or different one is refused, never initialised.
    """
    from zenml_collab.core.metadata.schema import HEAD_REVISION, SchemaState
    from zenml_collab.core.stores import open_metadata_store

    store = open_metadata_store(cfg, root)
    try:
        if cfg.store_id is not None:
            store.check_identity(cfg.store_id)
        initialised = False
        if store.schema_state() is SchemaState.EMPTY:
            store.check_schema()  # initialises under the migration lock
            initialised = True
        revision = store.revision()
        return (SchemaCheck(revision, HEAD_REVISION, initialised, store.store_id()),
                store.description)
    except CollabError as exc:
        raise _login_refused(exc, cfg, member) or exc from None
    except Exception as exc:
        # The connector's Admin API errors arrive classified (CollabError, above).
        import sqlalchemy as sa

        if not isinstance(exc, OSError | sa.exc.SQLAlchemyError):
            raise  # a bug, not a connection problem: keep the traceback
        raise ConnectivityError(f"cannot open the metadata store {store.description}: {exc}",
                                "check `collab proxy status` (proxy) or your network, then "
                                "re-run `collab join`") from None
    finally:
        # The cloudsql engine closes its connector (and event loop) when it is collected.
        store.engine.dispose()


def _login_refused(exc: CollabError, cfg: MetadataConfig, member: str) -> CollabError | None:
    from zenml_collab.dberrors import DbFault, fault_of

    fault = fault_of(exc)
    if fault not in (DbFault.LOGIN_REFUSED, DbFault.DATABASE_REFUSED):
        return None
    if fault is DbFault.DATABASE_REFUSED:
        # The user exists but was never granted the database (an interrupted bootstrap, or a
        # user made by hand): bootstrap repairs exactly this.
        return PermissionDeniedError(
            f"the database refused {cfg.username!r} access to {cfg.database!r}: "
            f"{exc.message.partition(': ')[2] or exc.message}",
            "ask an admin to run `collab bootstrap ... --regrant` (the same flags as the team's "
            "bootstrap), then run `collab join` again")
    from zenml_collab.infra.gcp.sqladmin import iam_user_name, iam_user_type

    instance = cfg.instance or "INSTANCE"
    kind = "cloud_iam_service_account" if iam_user_type(member).endswith("ACCOUNT") \
        else "cloud_iam_user"
    return PermissionDeniedError(
        f"the database refused {cfg.username!r}: {exc.message.partition(': ')[2] or exc.message}",
        f"ask the admin to add your IAM database user: `gcloud sql users create "
        f"{iam_user_name(member)} --instance={instance.split(':')[-1]} --type={kind}`, then "
        "`collab bootstrap ... --regrant` to grant it the database")


def verify_artifacts(clients: GcpClients, uri: str) -> str:
    """Write, read back and delete a probe object under the artifact prefix; its name."""
    from zenml_collab.infra.gcp.buckets import probe_object

    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    return probe_object(clients.storage, bucket, prefix, retry=clients.retry).object_name
