"""`collab config`: set, show and validate where a member's stores live.

Two files hold the settings (see :mod:`zenml_collab.config`):

* ``collab.yaml`` (committed) gets the team-wide values: the metadata store's ``kind``,
  ``database``, Cloud SQL ``instance`` and ``auth`` mode, and the artifact URI.
* ``.collab/local.yaml`` (gitignored, mode 0600) gets what belongs to one member: ``host``,
  ``port``, ``username``, the connector, and a password if one was given on stdin or at the
  prompt. ``--team`` puts the member values in ``collab.yaml`` too (never the password);
  ``--local`` keeps everything in ``.collab/local.yaml`` (a private override of the team).

Precedence when the settings are read, highest first: command-line flags > environment
(``COLLAB_DB_PASSWORD``, ``COLLAB_DB_URL``, ``COLLAB_ARTIFACT_URI``) > ``.collab/local.yaml`` >
``collab.yaml`` > defaults. A layer that changes the metadata ``kind`` discards the values of
the layers below it. A password taken from ``COLLAB_DB_PASSWORD`` is used to verify the
connection but is not written: the environment stays its source.

Every ``set`` verifies the new settings against the real service before writing anything, so a
failure leaves both files as they were.

In a clone whose ``collab.yaml`` is the team's (``collab bootstrap`` wrote it: it has a ``gcp``
section), ``set`` without ``--team`` changes only ``.collab/local.yaml``: a member trying another
store must not silently rewrite the file every teammate pulls. The result says which file
changed and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from zenml_collab import names
from zenml_collab.config import (
    LOCAL_DIR,
    LOCAL_FILE,
    TEAM_FILE,
    LocalConfig,
    MetadataConfig,
    TeamConfig,
    file_mode,
    format_validation_error,
    load_local_config,
    load_settings,
    load_team_config,
    merge_metadata,
    parse_connection_name,
    write_local_config,
    write_team_config,
)
from zenml_collab.errors import CollabError, ConfigError

Placement = Literal["split", "team", "local"]
MASK = "********"
TEAM_KEYS = frozenset({"kind", "database", "instance", "auth", "path"})
_DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")


@dataclass(frozen=True)
class SetResult:
    """What a ``config ... set`` changed and what it found on the way."""

    written: tuple[Path, ...]
    description: str
    detail: str = ""
    note: str = ""


TEAM_FILE_KEPT = ("collab.yaml is the team's (written by `collab bootstrap`): only your "
                  f"{LOCAL_DIR}/{LOCAL_FILE} changed; pass --team to change the team's file "
                  "(and commit it)")


def is_team_file(team: TeamConfig) -> bool:
    """Whether ``collab.yaml`` is the team's shared configuration (bootstrap wrote ``gcp``)."""
    return team.gcp is not None


def _effective_placement(team: TeamConfig, placement: Placement) -> tuple[Placement, str]:
    if placement == "split" and is_team_file(team):
        return "local", TEAM_FILE_KEPT
    return placement, ""


@dataclass(frozen=True)
class SettingRow:
    """One effective setting, rendered for humans, and the layer it came from."""

    key: str
    value: str
    source: str  # flag | env | local | team | default


def find_config_root(start: Path | None = None) -> Path:
    """The repository root: the collab root if there is one, else the git root."""
    from zenml_collab.core.git import find_git_root
    from zenml_collab.core.repository import find_root
    from zenml_collab.errors import RepositoryNotFoundError

    here = (start or Path.cwd()).resolve()
    try:
        return find_root(here)
    except RepositoryNotFoundError:
        root = find_git_root(here)
        if root is None:
            raise
        return root


# -- metadata -----------------------------------------------------------------------------
def metadata_values(kind: str, **values: Any) -> dict[str, Any]:
    """Validate the values of one ``config metadata set KIND`` (no I/O)."""
    if kind not in ("sqlite", "mysql", "cloudsql"):
        raise ConfigError(f"unknown metadata store kind {kind!r}", "use sqlite, mysql or cloudsql")
    out = {"kind": kind, **{k: v for k, v in values.items() if v is not None}}
    if kind == "mysql":
        missing = [k for k in ("host", "username", "database") if not out.get(k)]
        if missing:
            raise ConfigError(f"a mysql metadata store needs --{' --'.join(missing)}",
                              "e.g. collab config metadata set mysql --host 127.0.0.1 --port 3306 "
                              "--username zenml --database zenml --password-stdin")
    if kind == "cloudsql":
        if not out.get("instance") or not out.get("database"):
            raise ConfigError("a cloudsql metadata store needs --instance and --database",
                              "e.g. collab config metadata set cloudsql --instance "
                              "my-proj:europe-west1:zenml-metadata --database zenml --iam-user "
                              "you@example.com")
        parse_connection_name(out["instance"])
        names.check_connection_name(out["instance"])
    if out.get("database") and not _DB_NAME.match(out["database"]):
        raise ConfigError(f"invalid database name {out['database']!r}",
                          "use letters, digits, '_', '$' or '-' (at most 64)")
    return out


def set_metadata(root: Path, values: dict[str, Any], *, password: str | None = None,
                 placement: Placement = "split", verify: bool = True,
                 create_database: bool = True, env: dict[str, str] | None = None) -> SetResult:
    """Verify, then write the metadata store settings ``values`` (from :func:`metadata_values`).

    ``password`` is written to ``.collab/local.yaml`` only; ``env`` (default ``os.environ``)
    may supply ``COLLAB_DB_PASSWORD`` for the verification.
    """
    import os

    from zenml_collab.core.stores import describe_metadata

    env = dict(os.environ) if env is None else env
    team, local = load_team_config(root), load_local_config(root)
    placement, note = _effective_placement(team, placement)
    team_part = {k: v for k, v in values.items() if placement == "team" or k in TEAM_KEYS}
    local_part = {k: v for k, v in values.items() if k not in team_part}
    if placement == "local":
        team_part, local_part = {}, dict(values)
    if password is not None:
        local_part["password"] = password
    try:
        new_team = team if not team_part else TeamConfig.model_validate(
            {**team.model_dump(exclude_unset=True), "metadata": team_part})
        # The member's old metadata values belong to the old store: replace them all.
        new_local = LocalConfig.model_validate(
            {**local.model_dump(exclude_unset=True), "metadata": local_part or None})
    except ValidationError as exc:
        raise format_validation_error("the new metadata settings", exc) from None
    env_password = env.get("COLLAB_DB_PASSWORD") if password is None else None
    # What the files will say once written (the environment's password on top, if any).
    effective = merge_metadata(new_team.metadata, new_local.metadata,
                               {"password": env_password} if env_password else None)
    description, detail = describe_metadata(effective, root), ""
    if verify:
        detail, store_id = verify_metadata(effective, root, create_database=create_database)
        if store_id and team_part and new_team.metadata.store_id is None:
            # The team file names the store it points at (checked by every command).
            new_team = new_team.model_copy(update={
                "metadata": new_team.metadata.model_copy(update={"store_id": store_id})})
    written = []
    if new_local != local:
        written.append(_write_local(root, new_local))
    if new_team != team:
        written.append(write_team_config(root, new_team))
    return SetResult(tuple(written), description, detail, note)


def verify_metadata(cfg: MetadataConfig, root: Path, *,
                    create_database: bool = True) -> tuple[str, str | None]:
    """Connect, create the database if missing (and allowed), initialise an empty schema.

    Returns what was found and the store's id. A ``cfg.store_id`` must match (never
    initialise a database that is not the named store).
    """
    from zenml_collab.core.metadata.schema import HEAD_REVISION, SchemaState
    from zenml_collab.core.stores import open_metadata_store

    if cfg.kind == "mysql" and create_database:
        _ensure_mysql_database(cfg)
    store = open_metadata_store(cfg, root)
    try:
        if cfg.store_id is not None:
            store.check_identity(cfg.store_id)
        state = store.schema_state()
        if state is SchemaState.EMPTY:
            store.check_schema()  # initialises under the migration lock
            return f"initialised an empty database with schema {HEAD_REVISION}", store.store_id()
        before = store.revision()  # a foreign database raises here
        if state is not SchemaState.CURRENT:
            return (f"schema {before}: run `collab db upgrade` (this version needs "
                    f"{HEAD_REVISION})"), store.store_id()
        return f"schema {before} (current)", store.store_id()
    finally:
        store.engine.dispose()


def _ensure_mysql_database(cfg: MetadataConfig) -> None:
    """CREATE DATABASE IF NOT EXISTS, with errors that say which grant is missing."""
    import sqlalchemy as sa

    from zenml_collab.core.metadata.engine import mysql_url
    from zenml_collab.dberrors import DbFault, classify, db_error, driver_reason

    where = f"{cfg.host}:{cfg.port or 3306}"
    create_hint = (f"ask the database admin to run `CREATE DATABASE \\`{cfg.database}\\`` and "
                   f"`GRANT ALL PRIVILEGES ON \\`{cfg.database}\\`.* TO '{cfg.username}'@'%'`, "
                   "or grant CREATE")
    engine = sa.create_engine(mysql_url(cfg).set(database=""),  # the server, no database
                              connect_args={"connect_timeout": 10}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                         "WHERE SCHEMA_NAME = :db"), {"db": cfg.database}).first()
            if found is None:
                conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS `{cfg.database}` "
                                     "CHARACTER SET utf8mb4"))
                conn.commit()
    except sa.exc.DBAPIError as exc:
        fault = classify(exc)
        denied = (f"MySQL user {cfg.username!r} may not create the database {cfg.database!r} "
                  f"on {where}")
        if fault is DbFault.OTHER:
            raise ConfigError(f"MySQL on {where} failed: {driver_reason(exc)}",
                              "check the settings with `collab config show`") from None
        what = {DbFault.DATABASE_REFUSED: denied, DbFault.PRIVILEGE: denied,
                DbFault.LOGIN_REFUSED: f"MySQL refused the login of {cfg.username!r} on {where}",
                DbFault.UNREACHABLE: f"cannot reach MySQL on {where}",
                DbFault.DISCONNECTED: f"cannot reach MySQL on {where}",
                }.get(fault, f"MySQL on {where} failed")
        raise db_error(exc, what, hints={
            DbFault.DATABASE_REFUSED: create_hint, DbFault.PRIVILEGE: create_hint,
            DbFault.LOGIN_REFUSED: "check the username and password (give it with "
                                   "--password-stdin or COLLAB_DB_PASSWORD)",
            DbFault.UNREACHABLE: "check the host and port, and that the server (or the Cloud "
                                 "SQL proxy: `collab proxy status`) is running",
        }) from None
    finally:
        engine.dispose()


def _write_local(root: Path, config: LocalConfig) -> Path:
    from zenml_collab.actions.init import ensure_ignored

    local_dir = root / LOCAL_DIR
    local_dir.mkdir(exist_ok=True)
    local_dir.chmod(0o700)
    ensure_ignored(root)  # the file may hold a password: it must never be committed
    return write_local_config(root, config)


# -- artifacts ----------------------------------------------------------------------------
def set_artifacts(root: Path, uri: str, *, placement: Placement = "split",
                  verify: bool = True) -> SetResult:
    """Verify, then write the artifact store URI (``gs://bucket/prefix`` or a folder)."""
    from zenml_collab.config import ArtifactsConfig

    detail = ""
    check_artifact_uri(uri)
    if uri.startswith("gs://"):
        from zenml_collab.core.artifacts.gcs import GcsArtifactStore, parse_gcs_uri

        bucket, prefix = parse_gcs_uri(uri)
        uri = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        if verify:
            GcsArtifactStore(bucket, prefix, root / LOCAL_DIR / "cache").check_access()
            detail = f"bucket gs://{bucket} is reachable"
    team, local = load_team_config(root), load_local_config(root)
    placement, note = _effective_placement(team, placement)
    written = []
    if placement == "local":
        new_local = local.model_copy(update={"artifacts": ArtifactsConfig(uri=uri)})
        if new_local != local:
            written.append(_write_local(root, new_local))
    else:
        new_team = team.model_copy(update={"artifacts": ArtifactsConfig(uri=uri)})
        if new_team != team:
            written.append(write_team_config(root, new_team))
        if local.artifacts is not None:  # a stale private override would hide the team's URI
            written.append(_write_local(root, local.model_copy(update={"artifacts": None})))
    return SetResult(tuple(written), uri, detail, note)


def check_artifact_uri(uri: str) -> None:
    """Raise :class:`ConfigError` (naming ``artifacts.uri``) unless ``uri`` is usable.

    >>> check_artifact_uri("s3://bucket/x")
    Traceback (most recent call last):
    zenml_collab.errors.ConfigError: artifacts.uri: unsupported artifact store 's3://bucket/x'
    hint: use gs://BUCKET/PREFIX or a local folder path
    """
    if uri.startswith("gs://"):
        from zenml_collab.core.artifacts.gcs import parse_gcs_uri

        try:
            names.check_bucket(parse_gcs_uri(uri)[0])
        except ConfigError as exc:
            raise ConfigError(f"artifacts.uri: {exc.message}", exc.hint) from None
    elif "://" in uri or not uri.strip():
        raise ConfigError(f"artifacts.uri: unsupported artifact store {uri!r}",
                          "use gs://BUCKET/PREFIX or a local folder path")


# -- show ---------------------------------------------------------------------------------
def explain_settings(root: Path, *, env: dict[str, str] | None = None,
                     metadata_flags: dict[str, Any] | None = None,
                     artifacts_flag: str | None = None) -> list[SettingRow]:
    """Every effective setting with the layer it came from; secrets masked."""
    import os

    from zenml_collab.config import env_overrides

    env = dict(os.environ) if env is None else env
    settings = load_settings(root, env=env, metadata_override=metadata_flags,
                             artifacts_override=artifacts_flag)
    team, local = settings.team, settings.local
    layers: list[tuple[str, dict[str, Any]]] = [
        ("team", team.metadata.model_dump(exclude_unset=True)),
        ("local", local.metadata.model_dump(exclude_unset=True) if local.metadata else {}),
        ("env", env_overrides(env)),
        ("flag", dict(metadata_flags or {})),
    ]
    source: dict[str, str] = {}
    kind = None
    for name, values in layers:  # the same rule as config.merge_metadata
        if "kind" in values and kind is not None and values["kind"] != kind:
            source = {}
        kind = values.get("kind", kind)
        source.update({k: name for k, v in values.items() if v is not None})
    rows = []
    effective = settings.metadata.model_dump(exclude_none=True)
    for key in MetadataConfig.model_fields:
        if key not in effective or (key == "auth" and settings.metadata.kind != "cloudsql"):
            continue
        value = MASK if key == "password" else str(effective[key])
        rows.append(SettingRow(f"metadata.{key}", value, source.get(key, "default")))
    art_source = ("flag" if artifacts_flag else "env" if env.get("COLLAB_ARTIFACT_URI")
                  else "local" if local.artifacts else
                  "team" if "artifacts" in team.model_fields_set else "default")
    rows.append(SettingRow("artifacts.uri", settings.artifacts.uri, art_source))
    return rows


# -- validate -----------------------------------------------------------------------------
def validate_config(root: Path) -> list[str]:
    """Every problem in ``collab.yaml`` and ``.collab/local.yaml`` (empty if none)."""
    from zenml_collab.config import read_yaml

    problems: list[str] = []
    files: list[tuple[Path, type[TeamConfig] | type[LocalConfig]]] = [
        (root / TEAM_FILE, TeamConfig), (root / LOCAL_DIR / LOCAL_FILE, LocalConfig)]
    for path, model in files:
        try:
            model.model_validate(read_yaml(path))
        except CollabError as exc:
            problems.append(exc.message)
        except ValidationError as exc:
            for error in exc.errors():
                key = ".".join(str(p) for p in error["loc"]) or "(top level)"
                msg = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
                problems.append(f"{path}: {key}: {msg.removeprefix('Value error, ')}")
    local_file = root / LOCAL_DIR / LOCAL_FILE
    if local_file.exists() and file_mode(local_file) & 0o077:
        problems.append(f"{local_file}: mode {file_mode(local_file):o} lets others read it "
                        f"(run `chmod 600 {local_file}`)")
    if not problems:
        try:
            settings = load_settings(root)
            _check_complete(settings.metadata)
            check_artifact_uri(settings.artifacts.uri)
        except CollabError as exc:
            problems.append(exc.message)
    return problems


def _check_complete(cfg: MetadataConfig) -> None:
    if cfg.kind == "mysql":
        metadata_values("mysql", host=cfg.host, username=cfg.username, database=cfg.database)
    elif cfg.kind == "cloudsql":
        metadata_values("cloudsql", instance=cfg.instance, database=cfg.database)
