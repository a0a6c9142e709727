"""`collab bootstrap` in one call: plan, (unless a dry run) apply, write ``collab.yaml``.

The CLI parses flags into a :class:`~.model.BootstrapRequest`, calls :func:`bootstrap` and
renders the :class:`~.model.BootstrapOutcome`; the terminal stays out of this module (the
plan, the question about disabled APIs and progress go through callbacks).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.actions.bootstrap.applying import apply
from zenml_collab.actions.bootstrap.config import config_root, write_config
from zenml_collab.actions.bootstrap.model import (
    BootstrapOutcome,
    BootstrapRequest,
    Plan,
    ProgressCallback,
)
from zenml_collab.actions.bootstrap.planning import plan
from zenml_collab.errors import CollabError

if TYPE_CHECKING:
    from zenml_collab.infra.gcp.credentials import FoundCredentials


def bootstrap(request: BootstrapRequest, found: FoundCredentials, directory: Path, *,
              dry_run: bool = False, enable_services: bool = False,
              confirm_enable: Callable[[Plan], bool] | None = None,
              on_plan: Callable[[Plan], None] | None = None,
              on_progress: ProgressCallback | None = None) -> BootstrapOutcome:
    """Plan with ``found``'s credentials and, unless ``dry_run``, apply and write
    ``collab.yaml`` in the repository holding ``directory``.

    ``on_plan`` sees the plan before anything changes; disabled APIs are enabled when
    ``enable_services`` or when ``confirm_enable(plan)`` says so. An interrupt (Ctrl-C) during
    apply becomes a :class:`CollabError` saying how to resume.
    """
    from zenml_collab.config import load_team_config
    from zenml_collab.infra.gcp.clients import GcpClients

    root = config_root(directory)
    with GcpClients.from_found(found, request.project) as clients:
        plan_ = plan(clients, request, load_team_config(root))
        if on_plan is not None:
            on_plan(plan_)
        if dry_run:
            return BootstrapOutcome(plan_, applied=False)
        enable = enable_services
        if plan_.disabled_services and not enable and confirm_enable is not None:
            enable = confirm_enable(plan_)
        try:
            result = apply(clients, plan_, on_progress, enable_services=enable)
        except KeyboardInterrupt:
            # Users created before the interrupt exist on the re-run, so only --regrant grants
            # them their database.
            again = " with --regrant" if plan_.grants else ""
            raise CollabError("interrupted; what was started keeps going on Google's side",
                              f"re-run the same command{again}: it resumes from what "
                              "exists") from None
    before = _read(root / "collab.yaml")
    path, own = write_config(root, plan_, result.passwords, result.store_id)
    handed = tuple(p for p in result.passwords if p is not own)
    return BootstrapOutcome(plan_, applied=True, path=path, passwords=handed, own=own,
                            config_changed=_read(path) != before, store_id=result.store_id,
                            store_created=result.store_created)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None
