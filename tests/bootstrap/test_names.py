"""Names are checked against Google's formats before any API call: in `collab bootstrap`
(flags, before credentials are even looked up) and in `collab config ... set`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.bootstrap.conftest import CliResult, bootstrap_args
from zenml_collab import names
from zenml_collab.actions.config import check_artifact_uri, metadata_values
from zenml_collab.errors import ConfigError
from zenml_collab.testing.fake_gcp import FakeGCP

GOOD = {
    names.check_project: ["proj-a", "my-project-123", "example.com:my-proj"],
    names.check_region: ["europe-west1", "us-central1", "northamerica-northeast2"],
    names.check_instance: ["zenml-metadata", "a", "db1"],
    names.check_database: ["zenml", "team_db", "team-db", "a$b", "x" * 64],
    names.check_tier: ["db-custom-1-3840", "db-f1-micro", "db-n1-standard-2"],
    names.check_bucket: ["proj-a-zenml-artifacts", "abc", "my_bucket.example.com", "a" * 63],
    names.check_member: ["user:alice@example.com", "group:team@example.com",
                         "serviceAccount:sa@my-proj.iam.gserviceaccount.com"],
}
BAD = {
    names.check_project: ["Proj-A", "proj", "1project", "project-", "a" * 31, "my proj"],
    names.check_region: ["Europe-West1", "europe-west1-b", "europe", "eu west1", "$(id)"],
    names.check_instance: ["Inst'; DROP", "1db", "db-", "My-Instance", "db_1", "a" * 99, ""],
    names.check_database: ["a`b", "a'b", 'a"b', "a b", "a.b", "", "x" * 65, "db;drop"],
    names.check_tier: ["db-$(id)", "custom-1-3840", "db-", "db-Custom", "db--x", "db-x y"],
    names.check_bucket: ["ab", "Bucket", "-bucket", "bucket-", "192.168.1.1", "goog-bucket",
                         "my-google-bucket", "a..b", "a" * 64, "a/b", "b`x"],
    names.check_member: ["alice@example.com", "domain:example.com", "user:alice",
                         "user:'; DROP@example.com", "owner:alice@example.com",
                         "user:alice@example", "user:a b@example.com"],
}


@pytest.mark.parametrize(("check", "value"), [(c, v) for c, vs in GOOD.items() for v in vs])
def test_names_in_google_format_are_accepted(check: Callable[[str], str], value: str) -> None:
    assert check(value) == value


@pytest.mark.parametrize(("check", "value"), [(c, v) for c, vs in BAD.items() for v in vs])
def test_malformed_names_are_refused_with_the_expected_format(
    check: Callable[[str], str], value: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        check(value)
    assert info.value.exit_code == 1
    assert info.value.message.startswith("invalid ")
    assert info.value.hint and info.value.hint.startswith("expected ") and "e.g." in info.value.hint


def test_instance_id_and_project_together_are_at_most_98_characters() -> None:
    project = "p" + "x" * 28 + "1"  # 30
    names.check_instance("a" * 67, project=project)
    with pytest.raises(ConfigError):
        names.check_instance("a" * 68, project=project)


def test_a_huge_value_is_shown_cut_short_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        names.check_tier("db-" + "'" * 10_000)
    assert len(info.value.message) < 150


def test_member_kinds_can_be_narrowed() -> None:
    with pytest.raises(ConfigError, match="invalid member") as info:
        names.check_member("group:team@example.com", kinds=("user", "serviceAccount"))
    assert info.value.hint and "group:" not in info.value.hint


@pytest.mark.parametrize("flags", [
    ("--instance", "Inst'; DROP"),
    ("--database", "a`b"),
    ("--tier", "db-$(id)"),
    ("--bucket", "Evil Bucket"),
    ("--region", "europe-west1; rm"),
    ("--project", "Proj'"),
])
def test_bootstrap_refuses_a_malformed_name_before_any_request(
    gcp: FakeGCP, collab: Callable[..., CliResult], flags: tuple[str, str],
) -> None:
    args = bootstrap_args("--dry-run")
    if flags[0] == "--project":
        args[args.index("--project") + 1] = flags[1]
    elif flags[0] == "--region":
        args[args.index("--region") + 1] = flags[1]
    else:
        args += list(flags)
    result = collab(*args)
    assert result.code == 1, result.out + result.err
    assert "invalid" in result.err and "expected" in result.err
    assert "Traceback" not in result.err
    assert gcp.requests == []


def test_bootstrap_refuses_the_issue_example_all_at_once(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab(*bootstrap_args("--instance", "Inst'; DROP", "--database", "a`b",
                                    "--tier", "db-$(id)"))
    assert result.code == 1 and "invalid Cloud SQL instance id" in result.err
    assert "lowercase letters, digits and hyphens" in result.err
    assert gcp.requests == []


def test_bootstrap_refuses_a_malformed_member_before_any_request(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab(*bootstrap_args(members=("user:'; DROP USER x; --@example.com",)))
    assert result.code == 1 and "invalid member" in result.err
    assert gcp.requests == []


def test_config_set_checks_the_connection_name_parts_and_the_bucket() -> None:
    with pytest.raises(ConfigError, match="invalid Cloud SQL instance id"):
        metadata_values("cloudsql", instance="my-proj:europe-west1:Inst'x", database="zenml")
    with pytest.raises(ConfigError, match="invalid region"):
        metadata_values("cloudsql", instance="my-proj:Europe:zenml", database="zenml")
    with pytest.raises(ConfigError, match="invalid Google Cloud project id"):
        metadata_values("cloudsql", instance="p:europe-west1:zenml", database="zenml")
    assert metadata_values("cloudsql", instance="my-proj:europe-west1:zenml-metadata",
                           database="zenml")["instance"] == "my-proj:europe-west1:zenml-metadata"
    with pytest.raises(ConfigError, match=r"artifacts\.uri: invalid bucket name"):
        check_artifact_uri("gs://goog-artifacts/zenml")
    check_artifact_uri("gs://my-team-artifacts/zenml")
