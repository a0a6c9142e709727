"""`--fix` on the real services, `--member` for an admin, and a hanging Google API."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tests.doctor.conftest import ADMIN, PROJECT, World
from zenml_collab.actions.doctor import ALL_CHECKS, DoctorContext, run_doctor

pytestmark = [pytest.mark.mysql, pytest.mark.docker]


def test_fix_starts_the_stopped_proxy(make_world: Callable[..., World], proxy_image: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from zenml_collab.infra.proxy import PROXY_IMAGE_ENV, proxy_status, stop_proxy

    world = make_world()
    monkeypatch.setenv(PROXY_IMAGE_ENV, proxy_image)  # no registry here: the stand-in
    stop_proxy(world.docker, repo_root=world.root, timeout=2)
    report = run_doctor(lambda: DoctorContext(world.root), only=["db.port"], fix=True)
    assert [(a.check_id, a.action, a.ok) for a in report.applied] == [
        ("db.proxy", "proxy", True)], report.applied
    assert report.statuses() == {"repo.config": "pass", "db.proxy": "pass", "db.port": "pass"}
    status = proxy_status(world.docker, repo_root=world.root)
    assert status.ready and status.port == world.proxy_port


def test_fix_upgrades_an_old_schema_and_never_touches_iam(make_world: Callable[..., World],
                                                          ) -> None:
    world = make_world(schema="0001")
    before = len(world.fake.mutating_requests())
    report = run_doctor(lambda: DoctorContext(world.root), fix=True)
    assert [(a.check_id, a.action, a.ok) for a in report.applied] == [
        ("db.schema", "schema", True)]
    assert report.get("db.schema").status == "pass"
    assert report.exit_code == 0
    # The probe object is the only write doctor makes on Google's side, never a policy.
    writes = [r.method_id for r in world.fake.mutating_requests()[before:]]
    assert writes and set(writes) <= {"storage.objects.insert", "storage.objects.delete"}


def test_admin_evaluates_another_members_bindings_from_the_policy(
    make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(member_roles=("roles/cloudsql.instanceUser",))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(world.fake.add_member(ADMIN)))
    report = run_doctor(lambda: DoctorContext(world.root, member=world.member),
                        only=["iam", "sql.user"])
    project = report.get("iam.project")
    assert project.status == "fail" and world.member in project.detail
    assert "bindings in the project policy" in project.detail
    assert (f"gcloud projects add-iam-policy-binding {PROJECT} --member={world.member} "
            "--role=roles/cloudsql.client") in (project.fix or "")
    assert report.get("iam.bucket").status == "pass"
    assert report.get("sql.user").status == "pass"
    assert report.exit_code == 3


def test_a_hanging_api_fails_only_its_check_within_its_timeout(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.fake.inject("cloudresourcemanager.projects.testIamPermissions", status=None,
                      times=1, latency=3.0)
    checks = [dataclasses.replace(c, timeout=0.5) if c.id == "gcp.project" else c
              for c in ALL_CHECKS]
    report = run_doctor(lambda: DoctorContext(world.root), checks=checks)
    hung = report.get("gcp.project")
    assert hung.status == "fail" and "no answer within 0.5 s" in hung.detail
    assert report.exit_code == 4
    for check_id in ("credentials.token", "db.query", "db.schema", "env.packages"):
        assert report.get(check_id).status == "pass"
    assert report.get("bucket.probe").status == "skip"
