"""Checks of the Cloud SQL instance: it exists, runs, matches collab.yaml, takes IAM logins,
and knows the member's database user."""

from __future__ import annotations

import shlex

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.model import Check, CheckResult, NotApplicable, failed, passed
from zenml_collab.config import parse_connection_name
from zenml_collab.errors import CollabError

STATE_FIXES = {
    "SUSPENDED": "the instance is suspended, usually for a billing problem: an admin checks "
                 "the project's billing account in the Cloud console",
    "PENDING_CREATE": "the instance is still being created: wait a few minutes (the admin's "
                      "`collab bootstrap` resumes where it stopped)",
    "MAINTENANCE": "Google is maintaining the instance: wait a few minutes and re-run",
    "FAILED": "the instance failed: an admin looks at "
              "`gcloud sql operations list --instance={name} --project={project}`",
}


def _names(ctx: DoctorContext) -> tuple[str, str, str]:
    return parse_connection_name(ctx.require_gcp().instance)


def check_instance(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp.sqladmin import connection_name

    gcp = ctx.require_gcp()
    project, region, name = _names(ctx)
    where = f"--project={shlex.quote(project)}"
    inst = ctx.instance()
    if inst is None:
        return failed(f"no Cloud SQL instance {name} in project {project}",
                      f"check gcp.instance in collab.yaml against `gcloud sql instances list "
                      f"{where}`; if there is none, an admin runs `collab bootstrap`")
    actual = connection_name(inst)
    configured = {"gcp.instance": gcp.instance}
    metadata_instance = ctx.settings().metadata.instance
    if metadata_instance:
        configured["metadata.instance"] = metadata_instance
    wrong = [key for key, value in configured.items() if value != actual]
    if wrong:
        return failed(f"collab.yaml's {' and '.join(wrong)} is "
                      f"{configured[wrong[0]]}, but the instance's connection name is {actual}",
                      f"set {' and '.join(wrong)} to {actual} in collab.yaml and commit it "
                      f"(`gcloud sql instances describe {name} {where} "
                      "--format='value(connectionName)'` prints it)")
    if gcp.region != inst.get("region", region):
        return failed(f"collab.yaml's gcp.region is {gcp.region}, the instance is in "
                      f"{inst.get('region')}", f"set gcp.region to {inst.get('region')} in "
                      "collab.yaml and commit it")
    state = str(inst.get("state", ""))
    if state != "RUNNABLE":
        fix = STATE_FIXES.get(state, "an admin looks at the instance in the Cloud console")
        return failed(f"instance {name} is {state or 'in an unknown state'}, not RUNNABLE",
                      fix.format(name=name, project=project), "connectivity")
    policy = (inst.get("settings") or {}).get("activationPolicy")
    if policy == "NEVER":
        return failed(f"instance {name} is stopped (activation policy NEVER)",
                      f"an admin starts it: `gcloud sql instances patch {name} {where} "
                      "--activation-policy=ALWAYS`", "connectivity")
    return passed(f"{actual} is RUNNABLE ({inst.get('databaseVersion', '?')})")


def check_iam_auth(ctx: DoctorContext) -> CheckResult:
    gcp = ctx.require_gcp()
    if gcp.db_auth != "iam":
        raise NotApplicable("the team uses password authentication (gcp.db_auth: password)")
    project, _, name = _names(ctx)
    inst = ctx.instance()
    if inst is None:
        raise NotApplicable(f"no instance {name}")
    flags = {f.get("name"): f.get("value")
             for f in (inst.get("settings") or {}).get("databaseFlags") or []}
    if flags.get("cloudsql_iam_authentication") == "on":
        return passed(f"{name} accepts IAM database logins (cloudsql_iam_authentication=on)")
    others = ",".join(f"{k}={v}" for k, v in flags.items() if k != "cloudsql_iam_authentication")
    all_flags = ",".join(x for x in (others, "cloudsql_iam_authentication=on") if x)
    return failed(f"{name} has cloudsql_iam_authentication "
                  f"{flags.get('cloudsql_iam_authentication') or 'unset'}: IAM logins fail",
                  f"an admin runs `gcloud sql instances patch {name} "
                  f"--project={shlex.quote(project)} --database-flags={all_flags}` (the list "
                  "replaces all flags, so it repeats the existing ones)")


def _expected_user(ctx: DoctorContext) -> tuple[str, str, str]:
    """(Admin API user name, user type, MySQL login name) of the member's database user."""
    from zenml_collab.infra.gcp.sqladmin import iam_db_username, iam_user_name, iam_user_type

    gcp = ctx.require_gcp()
    if gcp.db_auth == "iam":
        member = ctx.member()
        return iam_user_name(member), iam_user_type(member), iam_db_username(member)
    username = ctx.settings().metadata.username
    if not username:
        raise NotApplicable("password auth without a configured database username")
    return username, "BUILT_IN", username


def _create_fix(ctx: DoctorContext, user: str, kind: str) -> str:
    project, _, name = _names(ctx)
    if kind == "BUILT_IN":
        return (f"an admin creates it: `gcloud sql users create {shlex.quote(user)} "
                f"--instance={name} --project={project} --password=...` (or `collab bootstrap "
                "--member ...`)")
    return (f"an admin creates it: `gcloud sql users create {shlex.quote(user)} "
            f"--instance={name} --project={project} --type={kind.lower()}` and grants it the "
            "database (or runs `collab bootstrap --member ...`)")


def check_user(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import sqladmin

    project, _, name = _names(ctx)
    user, kind, login = _expected_user(ctx)
    clients = ctx.clients()
    try:
        with ctx.serial("sqladmin"):
            users = sqladmin.list_users(clients.sqladmin, project, name, retry=clients.retry)
    except CollabError as exc:
        if exc.exit_code != 3 or ctx.member_override:
            raise
        return _user_from_login(ctx, user, kind, login)
    match = next((u for u in users if u.get("name") == user), None)
    if match is None:
        return failed(f"instance {name} has no database user {user} ({kind})",
                      _create_fix(ctx, user, kind), "permission")
    if match.get("type", "BUILT_IN") != kind:
        return failed(f"database user {user} is {match.get('type')}, expected {kind}",
                      _create_fix(ctx, user, kind), "permission")
    return passed(f"database user {user} ({kind}) exists on {name}")


def _user_from_login(ctx: DoctorContext, user: str, kind: str, login: str) -> CheckResult:
    # Members may not list users (cloudsql.users.list); a login as that user proves it exists.
    from zenml_collab.google.errors import GooglePermissionError

    elsewhere = _port_elsewhere(ctx)
    if elsewhere:
        # A login there proves nothing about the team's instance (the port trap): db.port
        # fails with the fix; a wrong "create the user" here would send the member astray.
        raise NotApplicable(elsewhere)
    try:
        ctx.db_login()
    except GooglePermissionError:
        # Google refused the connection before any database login (a missing IAM role,
        # which iam.project names): whether the user exists cannot be told from here.
        raise NotApplicable("Google refused the connection before the database login "
                            "(see iam.project and db.query)") from None
    except CollabError as exc:
        if exc.exit_code == 3:
            return failed(f"the database refused {login}: {exc.message}",
                          _create_fix(ctx, user, kind), "permission")
        raise NotApplicable("you may not list database users and the database could not be "
                            "reached to try the login (see db.query)") from None
    return passed(f"database user {user} exists (you logged in as {login})")


def _port_elsewhere(ctx: DoctorContext) -> str | None:
    """Why a login on the configured port would not reach the team's instance, if it would not."""
    from zenml_collab.actions.doctor.database import configured_port, connection_mode
    from zenml_collab.infra.proxy import proxy_status

    settings = ctx.settings()
    if connection_mode(settings) != "proxy":
        return None
    port = configured_port(settings)
    status = proxy_status(ctx.docker(), repo_root=ctx.root())
    if status.running and status.port != port:
        return (f"the configured port {port} is not this repository's proxy (on {status.port}), "
                "so a login there says nothing about your user (see db.port)")
    return None


CHECKS = (
    Check("sql.instance", "Cloud SQL instance runs and matches collab.yaml", check_instance,
          ("gcp.api.sqladmin",), timeout=8),
    Check("sql.iam_auth", "instance accepts IAM database logins", check_iam_auth,
          ("sql.instance",), timeout=8),
    Check("sql.user", "member's database user exists", check_user, ("sql.instance",),
          timeout=15, category="permission"),
)
