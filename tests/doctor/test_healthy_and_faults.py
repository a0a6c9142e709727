"""`collab doctor` against the fakes: a healthy setup passes every check; each fault injected
alone makes exactly its check fail or warn, with the expected fix, while the others still run.

The table of cases below is the one in docs/doctor.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.doctor.conftest import CONNECTION, PROJECT, World
from zenml_collab.actions.doctor import ALL_CHECKS, DoctorContext, DoctorReport, run_doctor

pytestmark = [pytest.mark.mysql, pytest.mark.docker]


def doctor(world: World, **kwargs: Any) -> DoctorReport:
    return run_doctor(lambda: DoctorContext(world.root), **kwargs)


def dependents(check_id: str) -> set[str]:
    """Every check that (transitively) depends on ``check_id``."""
    found: set[str] = set()
    grew = True
    while grew:
        grew = False
        for check in ALL_CHECKS:
            if check.id not in found and ({check_id} | found) & set(check.depends_on):
                found.add(check.id)
                grew = True
    return found


def _no_op(world: World, mp: pytest.MonkeyPatch) -> None:
    return None


def _drop_credentials(world: World, mp: pytest.MonkeyPatch) -> None:
    mp.delenv("GOOGLE_APPLICATION_CREDENTIALS")


def _refuse_tokens(world: World, mp: pytest.MonkeyPatch) -> None:
    world.fake.inject("oauth2.token", status=400, times=None)


def _disable_sqladmin(world: World, mp: pytest.MonkeyPatch) -> None:
    world.fake.disable_service(PROJECT, "sqladmin.googleapis.com")


def _stop_instance(world: World, mp: pytest.MonkeyPatch) -> None:
    with world.fake.world.lock:
        world.fake.instance(PROJECT, "main").resource["settings"]["activationPolicy"] = "NEVER"


def _suspend_instance(world: World, mp: pytest.MonkeyPatch) -> None:
    world.fake.set_instance_state(PROJECT, "main", "SUSPENDED")


def _stop_proxy(world: World, mp: pytest.MonkeyPatch) -> None:
    from zenml_collab.infra.proxy import stop_proxy

    stop_proxy(world.docker, repo_root=world.root, timeout=2)


def _point_port_at_other_mysql(world: World, mp: pytest.MonkeyPatch) -> None:
    from zenml_collab.config import load_local_config, write_local_config

    local = load_local_config(world.root)
    assert local.metadata is not None
    metadata = local.metadata.model_copy(update={"port": world.mysql.port})
    write_local_config(world.root, local.model_copy(update={"metadata": metadata}))


@dataclass(frozen=True)
class Case:
    name: str
    check: str
    status: str
    fix: str  # formatted with the world's attributes: {member}, {bucket}, ...
    exit_code: int
    options: dict[str, Any] = field(default_factory=dict)
    inject: Callable[[World, pytest.MonkeyPatch], None] = _no_op
    also_skipped: frozenset[str] = frozenset()  # checks the fault leaves nothing to try on


CASES = [
    Case("no credentials", "credentials.found", "fail",
         "gcloud auth application-default login", 3, inject=_drop_credentials),
    Case("token refused", "credentials.token", "fail",
         "gcloud auth application-default login", 3, inject=_refuse_tokens),
    Case("API disabled", "gcp.api.sqladmin", "fail",
         f"gcloud services enable sqladmin.googleapis.com --project {PROJECT}", 1,
         inject=_disable_sqladmin),
    Case("missing cloudsql.client", "iam.project", "fail",
         f"gcloud projects add-iam-policy-binding {PROJECT} --member={{member}} "
         "--role=roles/cloudsql.client", 3,
         options={"member_roles": ("roles/cloudsql.instanceUser",)}),
    Case("missing bucket role", "iam.bucket", "fail",
         "gcloud storage buckets add-iam-policy-binding gs://{bucket} --member={member} "
         "--role=roles/storage.objectAdmin", 3,
         options={"bucket_roles": ("roles/storage.legacyBucketReader",)}),
    Case("no bucket role at all", "iam.bucket", "fail",
         "gcloud storage buckets add-iam-policy-binding gs://{bucket} --member={member} "
         "--role=roles/storage.legacyBucketReader", 3, options={"bucket_roles": ()},
         also_skipped=frozenset({"bucket.exists", "bucket.security"})),
    Case("instance stopped", "sql.instance", "fail",
         f"gcloud sql instances patch main --project={PROJECT} --activation-policy=ALWAYS", 4,
         inject=_stop_instance),
    Case("instance suspended", "sql.instance", "fail", "billing", 4, inject=_suspend_instance),
    Case("wrong connection name", "sql.instance", "fail", f"set gcp.instance to {CONNECTION}",
         1, options={"team_instance": f"{PROJECT}:europe-west1:main"}),
    Case("proxy not running", "db.proxy", "fail", "collab proxy start", 4,
         inject=_stop_proxy, also_skipped=frozenset({"sql.user"})),
    Case("port taken by another MySQL", "db.port", "fail",
         "point the metadata store at the proxy's port {proxy_port}", 4,
         inject=_point_port_at_other_mysql, also_skipped=frozenset({"sql.user"})),
    Case("old schema", "db.schema", "fail", "collab db upgrade", 1, options={"schema": "0001"}),
    Case("bucket missing", "bucket.exists", "fail",
         "gcloud storage buckets create gs://{bucket}", 1, options={"create_bucket": False},
         also_skipped=frozenset({"iam.bucket"})),
    Case("public access not prevented", "bucket.security", "warn",
         "gcloud storage buckets update gs://{bucket} --public-access-prevention", 0,
         options={"public_access_prevention": "inherited"}),
    Case("package drift", "env.packages", "warn",
         "pip install zenml-collab==0.0.1 sqlalchemy==1.4.0", 0,
         options={"team_packages": {"sqlalchemy": "1.4.0", "zenml-collab": "0.0.1"}}),
]


def test_healthy_setup_passes_every_check_within_a_bounded_number_of_requests(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    before = len(world.fake.requests)
    report = doctor(world)
    not_passed = {r.id: (r.status, r.detail) for r in report.results if r.status != "pass"}
    assert not_passed == {}
    assert report.exit_code == 0
    assert [r.id for r in report.results] == [c.id for c in ALL_CHECKS]
    # Speed is a request budget, not seconds: one call per question, shared between checks.
    # (10 today: testIamPermissions, 2 Service Usage, instance, users, bucket, bucket
    # testPermissions, probe write/read/delete; the token endpoint is not logged.)
    assert len(world.fake.requests) - before <= 12


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_fault_fails_exactly_its_check_with_the_fix_and_the_rest_still_run(
    case: Case, make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(**case.options)
    case.inject(world, monkeypatch)
    report = doctor(world)
    result = report.get(case.check)
    assert result.status == case.status, \
        result.detail
    assert case.fix.format(**vars(world)) in (result.fix or ""), result.fix
    downstream = dependents(case.check) | case.also_skipped
    others = {r.id: r.status for r in report.results if r.id != case.check}
    assert {i: s for i, s in others.items() if i in downstream and s != "skip"} == {}
    assert {i: s for i, s in others.items() if i not in downstream and s != "pass"} == {}, \
        {r.id: r.detail for r in report.results if r.id in others and r.status != "pass"}
    assert report.exit_code == case.exit_code


def test_a_member_without_bucket_access_is_told_every_missing_role_in_one_pass(
    make_world: Callable[..., World],
) -> None:
    world = make_world(bucket_roles=())
    report = doctor(world)
    fix = report.get("iam.bucket").fix or ""
    for role in ("roles/storage.objectAdmin", "roles/storage.legacyBucketReader"):
        assert f"--member={world.member} --role={role}" in fix, fix
    assert "objectViewer" not in fix
    assert report.get("bucket.exists").status == "skip"
    assert report.exit_code == 3


def test_a_bucket_fix_names_one_role_per_capability(make_world: Callable[..., World]) -> None:
    world = make_world(bucket_roles=("roles/storage.legacyBucketReader",))
    fix = doctor(world).get("iam.bucket").fix or ""
    assert fix.count("add-iam-policy-binding") == 1 and "objectAdmin" in fix
    assert "objectViewer" not in fix


def test_the_port_trap_fails_db_port_only_and_exits_4(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world()
    _point_port_at_other_mysql(world, monkeypatch)
    report = doctor(world)
    assert report.get("db.port").status == "fail"
    assert report.get("sql.user").status != "fail", report.get("sql.user").detail
    assert report.exit_code == 4
