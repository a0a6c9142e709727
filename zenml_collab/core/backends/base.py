"""The backend contract: where a step that missed the cache executes."""

from __future__ import annotations

from typing import Protocol

from zenml_collab.core.backends.task import StepTask


class Backend(Protocol):
    """Runs one :class:`StepTask` to completion somewhere else; thread-safe."""

    name: str

    def prepare(self) -> None:
        """Checks before the first launch (permissions, image); raises a CollabError."""

    def image_digest(self) -> str | None:
        """The digest of the image tasks run in (recorded with each executed step)."""

    def execute(self, task: StepTask) -> None:
        """Run ``task`` and wait; the worker records the step. Raises StepFailedError."""

    def cancel_all(self) -> None:
        """Stop every task still running (Ctrl-C); idempotent, callable from any thread."""
