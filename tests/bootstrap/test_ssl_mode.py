"""Cloud SQL requires client certificates (sslMode TRUSTED_CLIENT_CERTIFICATE_REQUIRED): a new
instance is created with it, an older one is patched once, and the fake validates the value."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from googleapiclient.errors import HttpError

from tests.bootstrap.conftest import PROJECT, CliResult, bootstrap_args, make_request, runs_grants
from zenml_collab.actions import bootstrap as action
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.testing.fake_gcp import FakeGCP

REQUIRED = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"


def _ip_configuration(gcp: FakeGCP) -> dict[str, object]:
    return dict(gcp.instance(PROJECT, "zenml-metadata").resource["settings"]["ipConfiguration"])


def test_dry_run_plans_the_instance_with_client_certificates_required(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    result = collab(*bootstrap_args("--dry-run", "--json"))
    assert result.code == 0, result.err
    (instance,) = [r for r in json.loads(result.out)["plan"]["resources"]
                   if r["type"] == "sql_instance"]
    assert instance["action"] == "create"
    assert instance["settings"]["settings"]["ipConfiguration"]["sslMode"] == REQUIRED
    assert action.SSL_MODE == REQUIRED


@runs_grants
def test_new_instance_requires_client_certificates_and_an_older_one_is_patched_once(
    gcp: FakeGCP, collab: Callable[..., CliResult],
) -> None:
    assert collab(*bootstrap_args()).code == 0
    assert _ip_configuration(gcp)["sslMode"] == REQUIRED

    # An instance made before this rule (or by hand): no sslMode, Google's default applies.
    stored = gcp.instance(PROJECT, "zenml-metadata").resource["settings"]["ipConfiguration"]
    del stored["sslMode"]
    planned = collab(*bootstrap_args("--dry-run", "--json"))
    plan = json.loads(planned.out)["plan"]
    (instance,) = [r for r in plan["resources"] if r["type"] == "sql_instance"]
    assert instance["action"] == "update" and plan["changes"] == 1
    patched_ip = instance["settings"]["settings"]["ipConfiguration"]
    assert patched_ip == {"ipv4Enabled": True, "authorizedNetworks": [], "sslMode": REQUIRED}

    before = len(gcp.requests)
    applied = collab(*bootstrap_args())
    assert applied.code == 0, applied.err
    assert "requiring client certificates" in applied.out
    assert [r.method_id for r in gcp.requests[before:] if r.mutating] == ["sql.instances.patch"]
    assert _ip_configuration(gcp) == {"ipv4Enabled": True, "authorizedNetworks": [],
                                      "sslMode": REQUIRED}
    assert gcp.instance(PROJECT, "zenml-metadata").flags() == {
        "cloudsql_iam_authentication": "on"}  # the other settings were kept

    before = len(gcp.requests)
    again = collab(*bootstrap_args())
    assert again.code == 0 and [r for r in gcp.requests[before:] if r.mutating] == []
    assert "everything is in place: no change made" in again.out
    assert "done:" not in again.out  # one coherent line, not "no change" then "done"


def test_patch_keeps_a_legacy_require_ssl_consistent_with_ssl_mode(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    from zenml_collab.infra.gcp import sqladmin

    body = action.instance_body(make_request())
    body["settings"]["ipConfiguration"] = {"ipv4Enabled": True, "requireSsl": False}
    gcp.operation_polls["CREATE"] = 0
    sqladmin.insert_instance(admin.sqladmin, PROJECT, body)
    plan = action.plan(admin, make_request())
    (change,) = plan.resource("sql_instance")
    assert change.action == "update"
    assert change.settings["settings"]["ipConfiguration"] == {
        "ipv4Enabled": True, "requireSsl": True, "sslMode": REQUIRED}
    action.apply(admin, plan)
    assert action.plan(admin, make_request()).resource("sql_instance")[0].action == "none"


@pytest.mark.parametrize(("ip", "reason"), [
    ({"sslMode": "REQUIRE_NOTHING"}, "not one of the enum values"),  # the discovery check
    ({"sslMode": REQUIRED, "requireSsl": False}, "conflicts with requireSsl"),
    ({"sslMode": "ENCRYPTED_ONLY", "requireSsl": True}, "conflicts with requireSsl"),
])
def test_fake_refuses_an_invalid_ssl_mode_on_create_and_patch(
    gcp: FakeGCP, admin: GcpClients, ip: dict[str, object], reason: str,
) -> None:
    body = action.instance_body(make_request())
    body["settings"]["ipConfiguration"] = ip
    with pytest.raises(HttpError) as created:
        admin.sqladmin.instances().insert(project=PROJECT, body=body).execute()
    assert created.value.resp.status == 400 and reason in str(created.value)

    gcp.operation_polls["CREATE"] = 0
    admin.sqladmin.instances().insert(project=PROJECT,
                                      body=action.instance_body(make_request())).execute()
    with pytest.raises(HttpError) as patched:
        admin.sqladmin.instances().patch(project=PROJECT, instance="zenml-metadata",
                                         body={"settings": {"ipConfiguration": ip}}).execute()
    assert patched.value.resp.status == 400 and reason in str(patched.value)
    assert _ip_configuration(gcp)["sslMode"] == REQUIRED  # unchanged
    gcp.violations.clear()  # proven refused; the fixture would fail the test on it otherwise
