"""The team's metadata store, set up by bootstrap in the session it logs in for the grants.

Bootstrap creates the database, so it also initialises the store in it (migrations to head,
which creates the store's identity) and writes the id to ``collab.yaml`` (``metadata.store_id``)
for the admin to commit. No member's join then writes the id: two members recording the same
line in their tracked ``collab.yaml`` made a ``git pull`` abort. A database that already holds
a store keeps it, and its id; a re-run whose ``collab.yaml`` names the store does nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zenml_collab.actions.bootstrap.model import Plan, Progress, ProgressCallback

if TYPE_CHECKING:
    from zenml_collab.google.access import OwnedConnector

STEP = "metadata store"


def ensure_store(connector: OwnedConnector, plan_: Plan, password: str,
                 on_progress: ProgressCallback) -> tuple[str | None, bool]:
    """Initialise an empty team database as the store, or read the id of the store it holds.

    Logs in as :data:`~.model.GRANT_ADMIN_USER` with ``password`` through ``connector``.
    Returns (store id, whether this call initialised the store). The id is ``None`` for a store
    older than store ids (`collab db upgrade` gives it one). A database holding tables that are
    not a store is refused (:class:`~zenml_collab.errors.MetadataStoreError`), never touched.
    """
    import sqlalchemy as sa

    from zenml_collab.actions.bootstrap.grants import login
    from zenml_collab.core.metadata.schema import SchemaState
    from zenml_collab.core.metadata.store import MetadataStore

    change = plan_.store
    assert change is not None and change.action != "none"
    name = plan_.connection_name

    def creator() -> Any:
        return login(connector, name, password, database=change.database)

    engine = sa.create_engine("mysql+pymysql://", creator=creator, poolclass=sa.pool.NullPool,
                              isolation_level="READ COMMITTED")
    store = MetadataStore(engine, description=f"the database {change.database} on {name}")
    try:
        created = False
        if store.schema_state() is SchemaState.EMPTY:
            on_progress(Progress(STEP, f"initialising the schema and the store's id in "
                                       f"{change.database}"))
            store.check_schema()  # to head under the migration lock: a teammate may be joining
            created = True
        store.revision()  # a database holding another application's tables is refused here
        store_id = store.store_id()
        if store_id is None:
            on_progress(Progress(STEP, "the store predates store ids: run `collab db upgrade`, "
                                       "then bootstrap again to record its id"))
        else:
            on_progress(Progress(STEP, f"{'created' if created else 'found'} store {store_id[:8]}"
                                       f"{'' if created else ' (kept)'}"))
        return store_id, created
    finally:
        engine.dispose()
