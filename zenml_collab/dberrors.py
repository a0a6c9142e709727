"""The one classifier of database driver errors (MySQL / MariaDB through pymysql, and SQLite).

Errors are classified by the driver's error code, never by message text: pymysql's numeric code
(``exc.args[0]``) and SQLite's error name (``sqlite3.Error.sqlite_errorname``, Python >= 3.11).
The code is kept on the raised error as ``db_code`` so callers can still tell cases apart
through :attr:`DbError.fault`, without parsing messages or knowing any code themselves.

>>> classify_code(1045)
<DbFault.LOGIN_REFUSED: 'login refused'>
>>> classify_code("SQLITE_BUSY").transient
True
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from zenml_collab.errors import (
    EXIT_CONNECTIVITY,
    EXIT_PERMISSION,
    EXIT_USER,
    CollabError,
    ConnectivityError,
    MetadataStoreError,
    PermissionDeniedError,
)

DbCode = int | str | None


class DbFault(enum.Enum):
    """What a driver error means for the member, whatever the database."""

    UNREACHABLE = "unreachable"  # no server answers (yet): refused, unknown host, timeout
    DISCONNECTED = "disconnected"  # the server went away mid-conversation (restart, kill)
    LOGIN_REFUSED = "login refused"  # wrong user / password / IAM user missing
    DATABASE_REFUSED = "database refused"  # logged in, but not granted the database
    PRIVILEGE = "privilege missing"  # logged in, a statement needs a grant it lacks
    UNKNOWN_DATABASE = "unknown database"
    LOCK_CONFLICT = "lock conflict"  # deadlock / lock wait timeout / SQLite busy: retry
    TOO_LONG = "value too long"  # strict mode refused a value (never silently truncated)
    DUPLICATE = "duplicate key"
    NO_TABLE = "no such table"
    TABLE_EXISTS = "table exists"
    READ_ONLY = "read only"
    FULL = "disk full"
    OTHER = "other"

    @property
    def transient(self) -> bool:
        """Whether running the same work again may succeed without anyone acting."""
        return self in (DbFault.UNREACHABLE, DbFault.DISCONNECTED, DbFault.LOCK_CONFLICT)

    @property
    def exit_code(self) -> int:
        if self in (DbFault.UNREACHABLE, DbFault.DISCONNECTED):
            return EXIT_CONNECTIVITY
        if self in (DbFault.LOGIN_REFUSED, DbFault.DATABASE_REFUSED, DbFault.PRIVILEGE,
                    DbFault.READ_ONLY):
            return EXIT_PERMISSION
        return EXIT_USER


# pymysql / MySQL / MariaDB error numbers. The only place in the code base that knows them.
_MYSQL: Mapping[int, DbFault] = {
    2002: DbFault.UNREACHABLE,  # can't connect through the socket
    2003: DbFault.UNREACHABLE,  # can't connect to the server (refused, timeout)
    2005: DbFault.UNREACHABLE,  # unknown host
    2006: DbFault.DISCONNECTED,  # server has gone away
    2013: DbFault.DISCONNECTED,  # lost connection during query
    2014: DbFault.DISCONNECTED,  # commands out of sync after a broken read
    2055: DbFault.DISCONNECTED,  # lost connection (system error)
    1053: DbFault.DISCONNECTED,  # server shutdown in progress
    1927: DbFault.DISCONNECTED,  # connection killed (MariaDB)
    4031: DbFault.DISCONNECTED,  # disconnected for inactivity (MySQL 8)
    1040: DbFault.UNREACHABLE,  # too many connections
    1045: DbFault.LOGIN_REFUSED,  # access denied for user (password)
    1698: DbFault.LOGIN_REFUSED,  # access denied for user (auth plugin, e.g. unix_socket)
    1044: DbFault.DATABASE_REFUSED,  # access denied for user to database
    1142: DbFault.PRIVILEGE,  # command denied on a table
    1143: DbFault.PRIVILEGE,  # command denied on a column
    1227: DbFault.PRIVILEGE,  # needs SUPER or another dynamic privilege
    1410: DbFault.PRIVILEGE,  # not allowed to create a user with GRANT
    1049: DbFault.UNKNOWN_DATABASE,
    1205: DbFault.LOCK_CONFLICT,  # lock wait timeout (the statement was rolled back)
    1213: DbFault.LOCK_CONFLICT,  # deadlock (the transaction was rolled back)
    1406: DbFault.TOO_LONG,  # data too long for column (strict mode)
    1265: DbFault.TOO_LONG,  # data truncated (strict mode)
    1264: DbFault.TOO_LONG,  # out of range value
    1062: DbFault.DUPLICATE,
    1146: DbFault.NO_TABLE,
    1050: DbFault.TABLE_EXISTS,
    1290: DbFault.READ_ONLY,  # --read-only / super_read_only (a replica)
    1792: DbFault.READ_ONLY,  # read-only transaction
    1021: DbFault.FULL,
    1114: DbFault.FULL,  # table is full
}

# SQLite primary result codes by name (extended names like SQLITE_BUSY_SNAPSHOT reduce to these).
_SQLITE: Mapping[str, DbFault] = {
    "SQLITE_BUSY": DbFault.LOCK_CONFLICT,
    "SQLITE_LOCKED": DbFault.LOCK_CONFLICT,
    "SQLITE_CANTOPEN": DbFault.UNREACHABLE,
    "SQLITE_PERM": DbFault.PRIVILEGE,
    "SQLITE_AUTH": DbFault.PRIVILEGE,
    "SQLITE_READONLY": DbFault.READ_ONLY,
    "SQLITE_TOOBIG": DbFault.TOO_LONG,
    "SQLITE_FULL": DbFault.FULL,
    "SQLITE_CONSTRAINT": DbFault.DUPLICATE,  # refined below: only unique / primary keys
}
_SQLITE_DUPLICATES = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")

_HINTS: Mapping[DbFault, str] = {
    DbFault.UNREACHABLE: "check that the database (or the Cloud SQL proxy: `collab proxy status`) "
                         "is running; `collab doctor` diagnoses the rest",
    DbFault.DISCONNECTED: "the database restarted or dropped the connection: run the command "
                          "again; if it keeps happening, `collab doctor`",
    DbFault.LOGIN_REFUSED: "check metadata.username (and the password, or for IAM logins that "
                           "an admin created your database user: `collab doctor`)",
    DbFault.DATABASE_REFUSED: "your database user has not been granted the database: ask an "
                              "admin to run `collab bootstrap ... --regrant`",
    DbFault.PRIVILEGE: "your database user lacks a privilege: ask an admin to run "
                       "`collab bootstrap ... --regrant`",
    DbFault.UNKNOWN_DATABASE: "check metadata.database (`collab config show`)",
    DbFault.LOCK_CONFLICT: "another member was writing at the same time: run the command again",
    DbFault.TOO_LONG: "shorten the value (the database refused it rather than truncate it)",
    DbFault.DUPLICATE: "run the command again",
    DbFault.NO_TABLE: "run `collab db upgrade`",
    DbFault.TABLE_EXISTS: "run the command again (a teammate was creating the schema)",
    DbFault.READ_ONLY: "the database is read-only (a replica?): point metadata at the primary",
    DbFault.FULL: "the database's disk is full: an admin grows it",
    DbFault.OTHER: "`collab doctor` diagnoses the metadata store",
}


class DbError(CollabError):
    """A database driver error, classified; ``db_code`` is the driver's own code."""

    def __init__(self, message: str, hint: str | None = None, *, db_code: DbCode = None,
                 fault: DbFault = DbFault.OTHER) -> None:
        super().__init__(message, hint)
        self.db_code = db_code
        self.fault = fault


class DbConnectivityError(DbError, ConnectivityError):
    """The database could not be reached, or dropped the connection."""


class DbPermissionError(DbError, PermissionDeniedError):
    """The database refused the login, the database or a statement."""


class DbStoreError(DbError, MetadataStoreError):
    """Any other database error (lock conflicts, refused values, missing tables, ...)."""


def db_error_code(exc: BaseException) -> DbCode:
    """The driver's code of ``exc`` (a SQLAlchemy ``DBAPIError`` or the driver's own error)."""
    orig = getattr(exc, "orig", None) or exc
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], int):
        return args[0]
    return None


def classify_code(code: DbCode) -> DbFault:
    if isinstance(code, int):
        return _MYSQL.get(code, DbFault.OTHER)
    if isinstance(code, str):
        if code.startswith("SQLITE_CONSTRAINT") and code not in _SQLITE_DUPLICATES:
            return DbFault.OTHER
        primary = "_".join(code.split("_")[:2])
        return _SQLITE.get(primary, DbFault.OTHER)
    return DbFault.OTHER


def classify(exc: BaseException) -> DbFault:
    """What ``exc`` means. A connection SQLAlchemy invalidated counts as disconnected."""
    fault = classify_code(db_error_code(exc))
    if fault is DbFault.OTHER and getattr(exc, "connection_invalidated", False):
        return DbFault.DISCONNECTED
    return fault


def driver_reason(exc: BaseException) -> str:
    """The driver's own message (without SQLAlchemy's statement dump)."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", None)
    if args and len(args) > 1 and isinstance(args[0], int):
        return f"MySQL error {args[0]}: {args[1]}"
    name = getattr(orig, "sqlite_errorname", None)
    return f"SQLite {name}: {orig}" if name else str(orig)


def db_error(exc: BaseException, what: str, *,
             hints: Mapping[DbFault, str] | None = None) -> DbError:
    """The :class:`CollabError` for driver error ``exc`` met while doing ``what``.

    ``hints`` overrides the default fix for the faults the caller knows better.
    """
    code = db_error_code(exc)
    fault = classify(exc)
    hint = (hints or {}).get(fault) or _HINTS[fault]
    message = f"{what}: {driver_reason(exc)}"
    cls: type[DbError]
    if fault.exit_code == EXIT_CONNECTIVITY:
        cls = DbConnectivityError
    elif fault.exit_code == EXIT_PERMISSION:
        cls = DbPermissionError
    else:
        cls = DbStoreError
    return cls(message, hint, db_code=code, fault=fault)


def fault_of(error: BaseException) -> DbFault | None:
    """The fault recorded on a raised :class:`DbError` (``None`` for any other error)."""
    return error.fault if isinstance(error, DbError) else None
