"""IAM is eventually consistent: right after bootstrap creates the runner account, a policy that
names it is refused (400 "Service account ... does not exist.") for a while. Bootstrap waits
for it (once announced) within a bounded window, re-reading each policy before writing again;
past the window it stops with a named error, and a re-run resumes. Anything else is not
retried. Against the fake with its opt-in propagation delay (``fake.delay_iam_propagation``).

The two end-to-end rows (waits and completes in one run; past the window: named error, then a
re-run resumes) are in the fault matrix: tests/reliability/test_faults_bootstrap.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.bootstrap.conftest import (
    BOB,
    PROJECT,
    REGION,
    CliResult,
    bootstrap_args,
)
from zenml_collab.errors import CollabError
from zenml_collab.google.propagation import (
    WAITING,
    WINDOW_ENV,
    IamPropagationError,
    Propagation,
    is_member_not_propagated,
    missing_account,
    write_policy,
)
from zenml_collab.infra.gcp import buckets, compute, projects
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.testing.fake_gcp import FakeGCP

RUNNER_EMAIL = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
RUNNER = f"serviceAccount:{RUNNER_EMAIL}"
REFUSAL = f"Service account {RUNNER_EMAIL} does not exist."


def _policy_calls(fake: FakeGCP, since: int = 0) -> list[tuple[str, str, int]]:
    """(get|set, path, status) of every IAM policy call after request ``since``."""
    return [("set" if r.method_id.endswith("setIamPolicy") else "get", r.path, r.status)
            for r in fake.requests[since:]
            if r.method_id and r.method_id.endswith(("getIamPolicy", "setIamPolicy"))]


# -- the classifier and the wait, with a fake clock -------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _refusal(email: str = RUNNER_EMAIL, code: int = 400) -> Exception:
    from google.api_core import exceptions as core

    return core.from_http_status(code, f"Service account {email} does not exist.")


def test_the_refusal_is_recognised_raw_or_classified_and_nothing_else_is() -> None:
    from google.api_core import exceptions as core

    from zenml_collab.google.errors import classify

    raw = _refusal()
    assert missing_account(raw) == RUNNER_EMAIL and is_member_not_propagated(raw)
    try:  # as the infra editors raise it: the classifier's CollabError from the API error
        raise classify(raw, action="update", resource="projects/p") from raw
    except CollabError as exc:
        assert is_member_not_propagated(exc, [RUNNER_EMAIL])
        assert not is_member_not_propagated(exc, ["other@p.iam.gserviceaccount.com"])
    assert not is_member_not_propagated(core.BadRequest("Role roles/x is not supported."))
    assert not is_member_not_propagated(_refusal(code=404))  # the same words, other status
    assert not is_member_not_propagated(CollabError(REFUSAL))  # no API error behind it


def test_write_policy_retries_until_known_and_tells_once() -> None:
    clock, told, calls = _Clock(), [], []

    def attempt() -> str:
        calls.append(clock.now)
        if len(calls) < 4:
            raise _refusal()
        return "written"

    new = Propagation([RUNNER_EMAIL], on_wait=lambda email, window: told.append(email),
                      window=120, sleep=clock.sleep, clock=lambda: clock.now)
    assert write_policy(attempt, new, "project p") == "written"
    assert len(calls) == 4 and told == [RUNNER_EMAIL]
    assert clock.sleeps == [1.0, 2.0, 4.0]  # backoff, 1 s doubling
    assert write_policy(lambda: "again", new, "gs://b") == "again" and told == [RUNNER_EMAIL]


def test_write_policy_gives_up_after_the_window_with_the_fix() -> None:
    clock = _Clock()

    def attempt() -> None:
        raise _refusal()

    new = Propagation([RUNNER_EMAIL], window=120, sleep=clock.sleep, clock=lambda: clock.now)
    with pytest.raises(IamPropagationError) as info:
        write_policy(attempt, new, "project p")
    assert clock.now == pytest.approx(120) and max(clock.sleeps) <= 10
    err = info.value
    assert err.account == RUNNER_EMAIL and err.exit_code == 4
    assert f"IAM has not seen the new service account {RUNNER_EMAIL} after 120 s" in err.message
    assert err.hint == "re-run `collab bootstrap` in a minute; it resumes"
    assert isinstance(err.__cause__, Exception) and REFUSAL in str(err.__cause__)


def test_write_policy_raises_other_errors_and_other_accounts_at_once() -> None:
    from google.api_core import exceptions as core

    clock = _Clock()
    new = Propagation([RUNNER_EMAIL], window=120, sleep=clock.sleep, clock=lambda: clock.now)
    for error in (core.BadRequest("Invalid JSON payload received."),
                  _refusal("typo@p.iam.gserviceaccount.com")):  # a member that never existed
        calls: list[int] = []

        def attempt(error: Exception = error, calls: list[int] = calls) -> None:
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            write_policy(attempt, new, "project p")
        assert calls == [1]
    assert clock.sleeps == []


def test_the_window_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WINDOW_ENV, raising=False)
    assert Propagation([]).window == 120
    monkeypatch.setenv(WINDOW_ENV, "0.5")
    assert Propagation([]).window == 0.5
    monkeypatch.setenv(WINDOW_ENV, "soon")
    with pytest.raises(CollabError, match=WINDOW_ENV):
        Propagation([])


# -- the three policy editors against the fake ------------------------------------------------
@pytest.fixture
def discovery(admin: GcpClients) -> Iterator[Callable[[str], Any]]:
    """``discovery("iam" | "artifactregistry")``: the admin's client, closed at teardown."""
    made: list[Any] = []

    def make(api: str) -> Any:
        build = compute.iam_client if api == "iam" else compute.artifactregistry_client
        made.append(build(admin.credentials))
        return made[-1]

    yield make
    for client in made:
        client.close()


def _scope(fake: FakeGCP, admin: GcpClients, discovery: Callable[[str], Any],
           scope: str) -> Callable[[Propagation], bool]:
    """Create what ``scope`` needs; return the write that grants the runner something there."""
    if scope == "project":
        return lambda new: projects.add_bindings(
            admin.projects, PROJECT, {"roles/cloudsql.client": [RUNNER]}, propagation=new)
    if scope == "bucket":
        fake.storage.create_bucket("art-propagation", PROJECT)
        return lambda new: buckets.add_bucket_bindings(
            admin.storage, "art-propagation", {"roles/storage.objectAdmin": [RUNNER]},
            propagation=new)
    if scope == "repository":
        registry = discovery("artifactregistry")
        compute.create_repository(registry, PROJECT, REGION, "collab", poll=0)
        name = compute.repository_name(PROJECT, REGION, "collab")
        return lambda new: compute.add_repository_bindings(
            registry, name, {"roles/artifactregistry.reader": [RUNNER]}, propagation=new)
    iam = discovery("iam")  # the runner may act as another (older) account
    compute.create_service_account(iam, PROJECT, "collab-builder", "builder")
    builder = compute.service_account_email(PROJECT, "collab-builder")
    return lambda new: compute.add_service_account_bindings(
        iam, builder, {"roles/iam.serviceAccountUser": [RUNNER]}, propagation=new)


@pytest.mark.parametrize("scope", ["project", "bucket", "repository", "service_account"])
def test_each_policy_editor_waits_rereading_the_policy_before_each_write(
    gcp: FakeGCP, admin: GcpClients, discovery: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch, scope: str,
) -> None:
    monkeypatch.setenv(WINDOW_ENV, "10")
    write = _scope(gcp, admin, discovery, scope)
    delay = gcp.delay_iam_propagation(writes=2)
    compute.create_service_account(discovery("iam"), PROJECT, "collab-runner", "runner")
    told: list[str] = []
    new = Propagation([RUNNER_EMAIL], on_wait=lambda email, window: told.append(email))
    before = len(gcp.requests)
    assert write(new) is True
    calls = _policy_calls(gcp, before)
    assert [(kind, status) for kind, _, status in calls] == [
        ("get", 200), ("set", 400), ("get", 200), ("set", 400), ("get", 200), ("set", 200)]
    assert told == [RUNNER_EMAIL] and delay.refusals == {RUNNER_EMAIL: 2}
    assert write(new) is False  # in place: read only


def test_without_propagation_the_refusal_is_googles_error_at_once(
    gcp: FakeGCP, admin: GcpClients, discovery: Callable[[str], Any],
) -> None:
    gcp.delay_iam_propagation(writes=5)
    compute.create_service_account(discovery("iam"), PROJECT, "collab-runner", "runner")
    before = len(gcp.requests)
    with pytest.raises(CollabError) as info:
        projects.add_bindings(admin.projects, PROJECT, {"roles/cloudsql.client": [RUNNER]})
    assert REFUSAL in info.value.message and not isinstance(info.value, IamPropagationError)
    assert [k for k, _, _ in _policy_calls(gcp, before)] == ["get", "set"]


def test_the_fakes_delay_in_seconds_ends_by_itself(
    gcp: FakeGCP, admin: GcpClients, discovery: Callable[[str], Any],
) -> None:
    now = [0.0]
    delay = gcp.delay_iam_propagation(seconds=30)
    delay.clock = lambda: now[0]
    compute.create_service_account(discovery("iam"), PROJECT, "collab-runner", "runner")
    assert delay.pending(RUNNER_EMAIL) and not delay.pending("someone@else.example")
    now[0] = 29.9
    assert delay.pending(RUNNER_EMAIL)
    now[0] = 30.0
    assert not delay.pending(RUNNER_EMAIL)
    assert projects.add_bindings(admin.projects, PROJECT, {"roles/cloudsql.client": [RUNNER]})


# -- collab bootstrap --compute vertex --------------------------------------------------------
def _flat(text: str) -> str:
    """Output with the terminal's line wrapping undone."""
    return " ".join(text.split())


def test_an_unrelated_400_on_set_iam_policy_is_not_retried(
    gcp: FakeGCP, collab: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WINDOW_ENV, "20")
    gcp.delay_iam_propagation(writes=1)
    gcp.inject("cloudresourcemanager.projects.setIamPolicy", status=400, times=None)
    result = collab(*bootstrap_args("--compute", "vertex", "--yes"))
    assert result.code == 1, result.err
    err = _flat(result.err)
    assert "error: cannot update the project's IAM policy" in err
    assert "Injected failure 400" in err and "Traceback" not in err
    assert WAITING not in _flat(result.out) and "IAM has not seen" not in err
    writes = [s for k, _, s in _policy_calls(gcp) if k == "set"]
    assert writes == [400]  # one write, refused, not repeated


def test_a_member_account_that_does_not_exist_is_not_waited_for(
    gcp: FakeGCP, discovery: Callable[[str], Any], collab: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the runner (bootstrap's own account) is waited for: the same 400 for a member's
    account (a typo, or one that is itself new) is Google's error at once."""
    monkeypatch.setenv(WINDOW_ENV, "20")
    delay = gcp.delay_iam_propagation(writes=10_000)
    # A runner from an earlier bootstrap, which IAM knows by now.
    compute.create_service_account(discovery("iam"), PROJECT, "collab-runner", "runner")
    delay.settle()
    delay.account_created(BOB.removeprefix("serviceAccount:"))  # IAM does not know bob
    result = collab(*bootstrap_args("--compute", "vertex", "--yes"))
    assert result.code == 1, result.err
    err = _flat(result.err)
    assert f"Service account {BOB.removeprefix('serviceAccount:')} does not exist" in err
    assert "IAM has not seen" not in err and "Traceback" not in err
