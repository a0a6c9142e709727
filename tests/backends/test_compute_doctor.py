"""`collab doctor`'s compute checks against the fake Google APIs (Artifact Registry, IAM
service accounts, Vertex AI, Service Usage): each failure names the role or API and the
admin's command; a setup without vertex steps runs none of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zenml_collab.actions.doctor import (
    ALL_CHECKS,
    COMPUTE_CHECKS,
    DoctorContext,
    DoctorReport,
    run_doctor,
)
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.fake_gcp.registry import push_image, state_of
from zenml_collab.testing.repos import git, make_git_repo

PROJECT = "team-proj"
REGION = "us-central1"
ADMIN = f"admin@{PROJECT}.iam.gserviceaccount.com"
RUNNER = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
REPO = "collab"


def _repo(root: Path, key: Path, compute: dict[str, Any]) -> Path:
    from zenml_collab.config import (
        ArtifactsConfig,
        ComputeConfig,
        GcpConfig,
        LocalConfig,
        MetadataConfig,
        TeamConfig,
        write_local_config,
        write_team_config,
    )

    make_git_repo(root)
    write_team_config(root, TeamConfig(
        gcp=GcpConfig(project=PROJECT, region=REGION, instance=f"{PROJECT}:{REGION}:main",
                      database="zenml", bucket="team-bucket"),
        metadata=MetadataConfig(kind="mysql", database="zenml"),
        artifacts=ArtifactsConfig(uri="gs://team-bucket"),
        compute=ComputeConfig.model_validate(compute)))
    write_local_config(root, LocalConfig(credentials_file=str(key)))
    (root / ".gitignore").write_text(".collab/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "team")
    return root


def _image(digest: str) -> str:
    return f"{REGION}-docker.pkg.dev/{PROJECT}/{REPO}/steps@{digest}"


@pytest.fixture
def team(fake_gcp: FakeGCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A member with roles/aiplatform.user and actAs on the runner, the image pushed."""
    for name, value in fake_gcp.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    fake_gcp.add_project(PROJECT, owner=ADMIN)
    member = f"ana@{PROJECT}.iam.gserviceaccount.com"
    key = fake_gcp.add_member(member, roles=["roles/aiplatform.user"], project=PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    fake_gcp.vertex.grant_on_service_account(RUNNER, "roles/iam.serviceAccountUser",
                                             f"serviceAccount:{member}")
    digest = push_image(fake_gcp, PROJECT, REGION, REPO, "steps")
    state_of(fake_gcp).repositories[f"projects/{PROJECT}/locations/{REGION}/repositories/"
                                    f"{REPO}"].policy.grant("roles/artifactregistry.writer",
                                                            f"serviceAccount:{member}")
    compute = {"backend": "vertex", "image": _image(digest),
               "vertex": {"service_account": RUNNER}}

    def make(**changes: Any) -> Path:
        return _repo(tmp_path / f"clone{len(list(tmp_path.iterdir()))}", key,
                     {**compute, **changes})

    return fake_gcp, member, make


def doctor(root: Path) -> DoctorReport:
    return run_doctor(lambda: DoctorContext(root), only=["compute"])


def compute_results(report: DoctorReport) -> dict[str, tuple[str, str, str | None]]:
    return {r.id: (r.status, r.detail, r.fix) for r in report.results
            if r.id.startswith("compute.")}


def test_compute_checks_pass_for_a_member_who_can_launch_jobs_within_a_request_budget(
        team: Any) -> None:
    fake, _, make = team
    root = make()
    before = len(fake.requests)
    report = doctor(root)
    results = compute_results(report)
    assert set(results) == {c.id for c in COMPUTE_CHECKS}
    assert {k: v[0] for k, v in results.items()} == dict.fromkeys(results, "pass"), \
        [v for v in results.values() if v[0] != "pass"]
    assert report.exit_code == 0
    # project check, 2 Service Usage reads (+2 API probes: members cannot read it),
    # testIamPermissions x2 (project, account), one image lookup
    assert len(fake.requests) - before <= 10
    assert not fake.mutating_requests()


def test_a_member_without_aiplatform_user_fails_with_the_role_and_grant_command(
        team: Any) -> None:
    fake, member, make = team
    with fake.world.lock:
        fake.world.projects[PROJECT].policy.bindings.pop("roles/aiplatform.user")
    report = doctor(make())
    status, detail, fix = compute_results(report)["compute.iam"]
    assert status == "fail" and "aiplatform.customJobs.create" in detail
    assert fix is not None and "roles/aiplatform.user" in fix
    assert f"gcloud projects add-iam-policy-binding {PROJECT}" in fix and member in fix
    assert report.exit_code == 3


def test_a_member_who_cannot_act_as_the_runner_is_told_the_account_level_grant(
        team: Any) -> None:
    fake, _, make = team
    fake.vertex.sa_policies.clear()
    report = doctor(make())
    status, detail, fix = compute_results(report)["compute.actas"]
    assert status == "fail" and RUNNER in detail
    assert fix is not None and f"gcloud iam service-accounts add-iam-policy-binding {RUNNER}" \
        in fix and "roles/iam.serviceAccountUser" in fix
    assert report.exit_code == 3


def test_a_disabled_vertex_api_fails_with_the_enable_command_and_skips_the_job_check(
        team: Any) -> None:
    fake, _, make = team
    fake.disable_service(PROJECT, "aiplatform.googleapis.com")
    results = compute_results(doctor(make()))
    status, detail, fix = results["compute.api.aiplatform"]
    assert status == "fail" and "SERVICE_DISABLED" in detail
    assert fix is not None and "gcloud services enable aiplatform.googleapis.com" in fix
    assert results["compute.iam"][0] == "skip"


def test_an_image_missing_from_the_registry_fails_and_one_named_by_tag_warns(
        team: Any) -> None:
    _, _, make = team
    missing = compute_results(doctor(make(image=_image("sha256:" + "0" * 64))))
    assert missing["compute.image"][0] == "fail"
    assert "collab image build --push" in (missing["compute.image"][2] or "")
    tagged = compute_results(doctor(make(image=f"{REGION}-docker.pkg.dev/{PROJECT}/{REPO}/"
                                                "steps:latest")))
    assert tagged["compute.image"][0] == "warn" and "digest" in (tagged["compute.image"][2] or "")


def test_a_member_who_cannot_read_the_repository_is_told_the_repository_level_grant(
        team: Any) -> None:
    fake, member, make = team
    with fake.world.lock:
        for repo in state_of(fake).repositories.values():
            repo.policy.bindings.clear()
    status, _, fix = compute_results(doctor(make()))["compute.image"]
    assert status == "fail"
    assert fix is not None and f"gcloud artifacts repositories add-iam-policy-binding {REPO}" \
        in fix and "roles/artifactregistry.writer" in fix and member in fix


def test_no_runner_account_configured_fails_rather_than_using_the_default_compute_account(
        team: Any) -> None:
    _, _, make = team
    results = compute_results(doctor(make(vertex={})))
    assert results["compute.actas"][0] == "fail"
    assert "collab bootstrap --compute vertex" in (results["compute.actas"][2] or "")


def test_a_setup_without_vertex_steps_runs_no_compute_check(team: Any) -> None:
    from zenml_collab.actions.doctor.compute import uses_vertex

    _, _, make = team
    root = make(backend="docker", vertex={})
    with DoctorContext(root) as ctx:
        assert not uses_vertex(ctx)
    report = run_doctor(lambda: DoctorContext(root), only=["repo.config"])
    assert not [r for r in report.results if r.id.startswith("compute.")]
    assert not {c.id for c in COMPUTE_CHECKS} & {c.id for c in ALL_CHECKS}
