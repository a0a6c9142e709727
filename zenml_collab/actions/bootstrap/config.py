"""The files bootstrap writes: the team's ``collab.yaml`` and, for the admin's own generated
password, their gitignored ``.collab/local.yaml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from zenml_collab.actions.bootstrap.model import MemberPassword, Plan
from zenml_collab.config import (
    ArtifactsConfig,
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    TeamConfig,
    load_local_config,
    load_team_config,
    write_local_config,
    write_team_config,
)
from zenml_collab.infra.gcp.permissions import normalise_member


def team_config(plan_: Plan, existing: TeamConfig | None = None,
                store_id: str | None = None) -> TeamConfig:
    """``collab.yaml`` for ``plan_``, keeping unrelated settings (e.g. proxy) of ``existing``.

    ``store_id`` (the store bootstrap set up or found) is recorded as ``metadata.store_id``;
    without one, the id the plan found already recorded is kept.
    """
    req = plan_.request
    store_id = store_id or (plan_.store.store_id if plan_.store else None)
    gcp = GcpConfig(project=req.project, region=req.region, instance=plan_.connection_name,
                    database=req.database, db_auth=req.db_auth, bucket=req.bucket_name,
                    members=req.members)
    metadata = MetadataConfig(kind="cloudsql", instance=plan_.connection_name,
                              database=req.database, auth=req.db_auth, store_id=store_id)
    # The store adds artifacts/<hash[:2]>/<hash>/ itself: no prefix, or objects would land
    # under gs://bucket/artifacts/artifacts/.
    artifacts = ArtifactsConfig(uri=f"gs://{req.bucket_name}")
    base = existing or TeamConfig()
    update = {"gcp": gcp, "metadata": metadata, "artifacts": artifacts}
    if req.compute == "vertex":  # jobs run as the runner account bootstrap set up
        runner = f"{req.runner_account}@{req.project}.iam.gserviceaccount.com"
        vertex = base.compute.vertex.model_copy(update={"service_account": runner})
        update["compute"] = base.compute.model_copy(update={"vertex": vertex})
    return base.model_copy(update=update)


def write_config(root: Path, plan_: Plan, passwords: tuple[MemberPassword, ...] = (),
                 store_id: str | None = None) -> tuple[Path, MemberPassword | None]:
    """Write ``collab.yaml`` (with the store's id); the admin's own generated password (if
    any) goes to their ``.collab/local.yaml`` (0600). Returns the team file and the password
    kept locally."""
    path = write_team_config(root, team_config(plan_, load_team_config(root), store_id))
    from zenml_collab.actions.init import ensure_ignored

    ensure_ignored(root)  # .gitignore, committed with collab.yaml: members then change nothing
    admin = normalise_member(plan_.admin) if plan_.admin else None
    own = next((p for p in passwords if p.member == admin), None)
    if own is not None:
        local = load_local_config(root)
        metadata = MetadataConfig(kind="cloudsql", instance=plan_.connection_name,
                                  database=plan_.request.database, auth="password",
                                  username=own.username,
                                  password=SecretStr(own.password))
        write_local_config(root, LocalConfig.model_validate(
            {**local.model_dump(exclude_unset=True), "metadata": metadata}))
    return path, own


def config_root(directory: Path) -> Path:
    """Where collab.yaml goes: the git root above ``directory``, else ``directory`` itself."""
    from zenml_collab.core.git import find_git_root

    path = directory.resolve()
    return find_git_root(path) or path
