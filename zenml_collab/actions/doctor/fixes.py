"""The safe local fixes ``collab doctor --fix`` applies. Never IAM, never anything remote
except upgrading the metadata schema, which ``collab db upgrade`` would do the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.database import configured_port
from zenml_collab.actions.doctor.model import AppliedFix, CheckResult
from zenml_collab.errors import CollabError, ConfigError, CredentialsError


def add_ignore_line(ctx: DoctorContext) -> str:
    from zenml_collab.actions.init import IGNORE_LINE, ensure_ignored

    root = ctx.git_root() or ctx.root()
    changed = ensure_ignored(root)
    return f"added {IGNORE_LINE} to {changed}" if changed else f"git already ignores {IGNORE_LINE}"


def start_proxy(ctx: DoctorContext) -> str:
    from zenml_collab.infra import proxy

    settings = ctx.settings()
    team = settings.team
    connection = settings.metadata.instance or (team.gcp.instance if team.gcp else None)
    if not connection:
        raise ConfigError("no instance connection name to start the proxy for",
                          "set gcp.instance in collab.yaml")
    credentials = settings.local.credentials_file
    path = Path(credentials).expanduser() if credentials else ctx.credentials().file
    if path is None:
        raise CredentialsError("the proxy needs a credentials file to mount",
                               "set credentials_file in .collab/local.yaml")
    auth = team.gcp.db_auth if team.gcp else settings.metadata.auth
    status = proxy.start_proxy(
        ctx.docker(), repo_root=ctx.root(), connection_name=connection, credentials_file=path,
        port=configured_port(settings),
        image=proxy.resolve_proxy_image(f"{team.proxy.image}:{team.proxy.version}"),
        auto_iam_authn=auth == "iam")
    return f"started {status.name} on 127.0.0.1:{status.port}"


def upgrade_schema(ctx: DoctorContext) -> str:
    before, after = ctx.metadata_store().upgrade()
    return f"upgraded the schema {before or '(empty)'} -> {after}"


FIXES: dict[str, Callable[[DoctorContext], str]] = {
    "ignore": add_ignore_line,
    "proxy": start_proxy,
    "schema": upgrade_schema,
}


def apply_fix(result: CheckResult, ctx: DoctorContext) -> AppliedFix:
    """Apply ``result``'s ``auto_fix``; a failure is reported, not raised."""
    action = result.auto_fix or ""
    try:
        message = FIXES[action](ctx)
    except CollabError as exc:
        return AppliedFix(result.id, action, False,
                          exc.message + (f" ({exc.hint})" if exc.hint else ""))
    return AppliedFix(result.id, action, True, message)
