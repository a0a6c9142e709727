"""Service Usage v1: ``services.get`` / ``enable`` / ``disable`` per project.

Disabling ``sqladmin.googleapis.com`` or ``storage.googleapis.com`` makes the fake answer calls of
that API in the project with the real 403 ``SERVICE_DISABLED`` body (see ``errors``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zenml_collab.testing.fake_gcp import errors
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import SERVICE_TITLES, Project

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP


def _target(fake: FakeGCP, call: Call) -> tuple[Project, str]:
    project = fake.world.find_project(call.params.get("v1Id1", ""))
    if call.params.get("v1Id") != "projects" or project is None:
        raise errors.caller_lacks_permission()
    return project, call.params["servicesId"]


def service_json(project: Project, service: str) -> dict[str, Any]:
    state = "ENABLED" if service in project.services else "DISABLED"
    return {
        "name": f"projects/{project.number}/services/{service}",
        "parent": f"projects/{project.number}",
        "state": state,
        "config": {"name": service, "title": SERVICE_TITLES.get(service, service)},
    }


def get_service(fake: FakeGCP, call: Call) -> Reply:
    project, service = _target(fake, call)
    return Reply(body=service_json(project, service))


def _set(fake: FakeGCP, call: Call, enabled: bool) -> Reply:
    project, service = _target(fake, call)
    if enabled:
        project.services.add(service)
        kind = "EnableServiceResponse"
    else:
        project.services.discard(service)
        kind = "DisableServiceResponse"
    return Reply(body={
        "name": f"operations/fake.{fake.world.next_id():06d}",
        "done": True,
        "response": {"@type": f"type.googleapis.com/google.api.serviceusage.v1.{kind}",
                     "service": service_json(project, service)},
    })


def enable_service(fake: FakeGCP, call: Call) -> Reply:
    return _set(fake, call, True)


def disable_service(fake: FakeGCP, call: Call) -> Reply:
    return _set(fake, call, False)


def batch_enable(fake: FakeGCP, call: Call) -> Reply:
    project = fake.world.find_project(call.params.get("v1Id1", ""))
    if call.params.get("v1Id") != "projects" or project is None:
        raise errors.caller_lacks_permission()
    ids = (call.body or {}).get("serviceIds", [])
    project.services.update(ids)
    return Reply(body={
        "name": f"operations/fake.{fake.world.next_id():06d}",
        "done": True,
        "response": {"@type": "type.googleapis.com/google.api.serviceusage.v1.BatchEnable"
                              "ServicesResponse",
                     "services": [service_json(project, s) for s in ids]},
    })


def list_services(fake: FakeGCP, call: Call) -> Reply:
    project = fake.world.find_project(call.params.get("v1Id1", ""))
    if call.params.get("v1Id") != "projects" or project is None:
        raise errors.caller_lacks_permission()
    wanted = (call.arg("filter") or "").removeprefix("state:") or None
    items = [service_json(project, s) for s in sorted(set(SERVICE_TITLES) | project.services)]
    items = [i for i in items if wanted in (None, i["state"])]
    return Reply(body={"services": items} if items else {})


def get_operation(fake: FakeGCP, call: Call) -> Reply:
    """Every Service Usage operation of the fake finishes at once."""
    return Reply(body={"name": f"operations/{call.params['operationsId']}", "done": True})


HANDLERS = {
    "serviceusage.services.batchEnable": batch_enable,
    "serviceusage.services.list": list_services,
    "serviceusage.operations.get": get_operation,
    "serviceusage.services.get": get_service,
    "serviceusage.services.enable": enable_service,
    "serviceusage.services.disable": disable_service,
}
