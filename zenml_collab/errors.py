"""Errors a user can act on.

Every error carries a ``message`` (what went wrong) and a ``hint`` (how to fix it). The CLI prints
both and exits with the error's ``exit_code``; nothing else in the code base knows about exit codes.

Exit codes (documented in the README):

====  ==========================================================
0     success
1     user error: bad input, bad config, failed pipeline, ...
2     usage error (click's own code for bad flags)
3     permission denied (IAM, database grants)
4     connectivity: a service could not be reached
====  ==========================================================
"""

from __future__ import annotations

EXIT_USER = 1
EXIT_USAGE = 2
EXIT_PERMISSION = 3
EXIT_CONNECTIVITY = 4


class CollabError(Exception):
    """Base class of every error we expect a user to see."""

    exit_code: int = EXIT_USER

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class ConfigError(CollabError):
    """A config file or a config value is missing or invalid."""


class RepositoryNotFoundError(CollabError):
    """No collab repository (git repo with `.collab/` or `collab.yaml`) was found."""


class PipelineError(CollabError):
    """A pipeline is ill-formed (cycle, unknown input, duplicate step name, ...)."""


class SourceMissingError(ConfigError):
    """A step's local source file (a datasource's CSV) is not in this clone."""


class PipelineNotFoundError(CollabError):
    """No pipeline of that name exists."""


class ImmutablePipelineError(CollabError):
    """An attempt to change a pipeline that has been run; use ``copy(new_name=...)``."""


class StepFailedError(CollabError):
    """A step body raised; the run was marked failed."""


class ArtifactError(CollabError):
    """An artifact could not be stored, found or verified."""


class ArtifactMissingError(ArtifactError):
    """An artifact recorded in the metadata store is gone from the artifact store."""


class ArtifactCorruptError(ArtifactError):
    """An artifact's bytes do not match its recorded content hash; it is never served."""


class UntrustedArtifactError(ArtifactError):
    """A record read from a shared store is malformed or hostile (a path outside the store, an
    unknown materializer, a file outside its materializer's layout); nothing was written."""


class MaterializerError(ArtifactError):
    """No materializer can store a value of this type, or a stored value cannot be read."""


class MetadataStoreError(CollabError):
    """The metadata store failed or its schema does not match this version."""


class SchemaOutOfDateError(MetadataStoreError):
    """The metadata store's schema is behind (or ahead of) this version of zenml-collab."""


class StoreIdentityError(MetadataStoreError):
    """The database reached is not the team's store (empty, foreign, or another store's id)."""

    exit_code = EXIT_CONNECTIVITY


class PermissionDeniedError(CollabError):
    """A cloud or database permission is missing."""

    exit_code = EXIT_PERMISSION


class ConnectivityError(CollabError):
    """A service (database, bucket, API, proxy) could not be reached."""

    exit_code = EXIT_CONNECTIVITY


class CredentialsError(CollabError):
    """No usable Google credentials were found, or they were refused."""

    exit_code = EXIT_PERMISSION
