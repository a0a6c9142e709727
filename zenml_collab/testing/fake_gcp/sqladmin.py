"""Cloud SQL Admin (v1 and the v1beta4 paths the connector uses): instances, databases, users,
operations, connect settings and ephemeral certs.

Instance creation returns a PENDING operation that reaches DONE after
``fake.operation_polls["CREATE"]`` calls of ``operations.get``; until then the instance is
``PENDING_CREATE`` and other operations on it fail with 409 ``operationInProgress``, as on Google.
"""

from __future__ import annotations

import copy
import hashlib
from typing import TYPE_CHECKING, Any

from zenml_collab.testing.fake_gcp import errors, sqladmin_catalog
from zenml_collab.testing.fake_gcp.call import Call, Reply
from zenml_collab.testing.fake_gcp.state import Instance, Operation, Project, SqlUser, now_rfc3339
from zenml_collab.testing.fake_gcp.tls_front import CertGrant

if TYPE_CHECKING:
    from zenml_collab.testing.fake_gcp.fake import FakeGCP

IAM_USER_TYPES = {"CLOUD_IAM_USER", "CLOUD_IAM_SERVICE_ACCOUNT", "CLOUD_IAM_GROUP"}


def _project(fake: FakeGCP, call: Call) -> Project:
    project = fake.world.find_project(call.params["project"])
    if project is None:  # permission was checked first, so this is unreachable for real callers
        raise errors.sql_not_authorized()
    return project


def _instance(fake: FakeGCP, call: Call, *, runnable: bool = False) -> Instance:
    instance = _project(fake, call).instances.get(call.params["instance"])
    if instance is None:
        raise errors.sql_not_found("instance")
    if runnable and instance.state == "PENDING_CREATE":
        raise errors.error(409, "Operation failed because another operation was already in "
                           "progress.", "operationInProgress")
    return instance


def _start_operation(fake: FakeGCP, call: Call, project: Project, op_type: str,
                     target: str) -> Operation:
    polls = fake.operation_polls.get(op_type, 0)
    op = Operation(name=f"fake-op-{fake.world.next_id():06d}", project=project.project_id,
                   operation_type=op_type, target=target, remaining=polls,
                   status="PENDING" if polls else "DONE")
    if not polls:
        op.end_time = op.insert_time
    project.operations[op.name] = op
    return op


def operation_json(fake: FakeGCP, op: Operation, user: str) -> dict[str, Any]:
    base = f"{fake.url}/v1/projects/{op.project}"
    body: dict[str, Any] = {
        "kind": "sql#operation", "name": op.name, "operationType": op.operation_type,
        "status": op.status, "targetId": op.target, "targetProject": op.project,
        "targetLink": f"{base}/instances/{op.target}", "selfLink": f"{base}/operations/{op.name}",
        "insertTime": op.insert_time, "startTime": op.insert_time, "user": user,
    }
    if op.end_time:
        body["endTime"] = op.end_time
    if op.error:
        body["error"] = op.error
    return body


def instance_json(fake: FakeGCP, inst: Instance) -> dict[str, Any]:
    body = copy.deepcopy(inst.resource)
    settings = body.setdefault("settings", {})
    settings.setdefault("tier", "db-f1-micro")
    # Google always answers with an sslMode; an instance created without one allows both.
    settings.setdefault("ipConfiguration", {}).setdefault("sslMode",
                                                          sqladmin_catalog.DEFAULT_SSL_MODE)
    settings.update({"kind": "sql#settings", "settingsVersion": settings.get("settingsVersion",
                                                                             "1")})
    body.update({
        "kind": "sql#instance", "name": inst.name, "project": inst.project,
        "region": inst.region, "databaseVersion": inst.database_version, "state": inst.state,
        "connectionName": inst.connection_name, "instanceType": "CLOUD_SQL_INSTANCE",
        "backendType": "SECOND_GEN", "gceZone": f"{inst.region}-a",
        "createTime": inst.create_time,
        "selfLink": f"{fake.url}/v1/projects/{inst.project}/instances/{inst.name}",
        "ipAddresses": [{"type": "PRIMARY", "ipAddress": fake.sql_ip}],
        "serverCaCert": _server_ca(fake, inst),
    })
    return body


def _server_ca(fake: FakeGCP, inst: Instance) -> dict[str, Any]:
    pem = fake.ca.pem
    return {"kind": "sql#sslCert", "cert": pem, "certSerialNumber": str(fake.ca.cert.serial_number),
            "commonName": "Fake Cloud SQL Server CA", "instance": inst.name,
            "sha1Fingerprint": hashlib.sha1(pem.encode()).hexdigest()}


def insert_instance(fake: FakeGCP, call: Call) -> Reply:
    project = _project(fake, call)
    body = dict(call.body or {})
    name = body.get("name")
    if not name:
        raise errors.error(400, "Missing parameter: name.", "required")
    if name in project.instances:
        raise errors.sql_conflict("instance")
    sqladmin_catalog.check_instance(body, creating=True)
    body.pop("state", None)
    inst = Instance(name=name, project=project.project_id,
                    region=body.get("region", "us-central1"),
                    database_version=body.get("databaseVersion", "MYSQL_8_0"), resource=body)
    inst.users[("root", "%")] = SqlUser("root", "%", "BUILT_IN")
    project.instances[name] = inst
    op = _start_operation(fake, call, project, "CREATE", name)
    if op.status == "DONE":
        inst.state = "RUNNABLE"
    return Reply(body=operation_json(fake, op, call.email))


def get_instance(fake: FakeGCP, call: Call) -> Reply:
    return Reply(body=instance_json(fake, _instance(fake, call)))


def list_instances(fake: FakeGCP, call: Call) -> Reply:
    items = [instance_json(fake, i) for i in _project(fake, call).instances.values()]
    return Reply(body={"kind": "sql#instancesList", **({"items": items} if items else {})})


def patch_instance(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call, runnable=True)
    body = dict(call.body or {})
    sqladmin_catalog.check_instance(body, creating=False)
    settings = body.pop("settings", None)
    for key in ("name", "project", "state", "connectionName", "region", "databaseVersion"):
        body.pop(key, None)
    inst.resource.update(body)
    if settings:
        current = inst.resource.setdefault("settings", {})
        current.update(settings)  # lists (e.g. databaseFlags) are replaced whole, as in Google
        current["settingsVersion"] = str(int(current.get("settingsVersion", "1")) + 1)
    op = _start_operation(fake, call, _project(fake, call), "UPDATE", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def delete_instance(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    project = _project(fake, call)
    del project.instances[inst.name]
    op = _start_operation(fake, call, project, "DELETE", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def get_operation(fake: FakeGCP, call: Call) -> Reply:
    project = _project(fake, call)
    op = project.operations.get(call.params["operation"])
    if op is None:
        raise errors.sql_not_found("operation")
    if op.status != "DONE":
        if op.remaining > 0:
            op.status, op.remaining = "RUNNING", op.remaining - 1
        else:
            op.status, op.end_time = "DONE", now_rfc3339()
            inst = project.instances.get(op.target)
            if op.operation_type == "CREATE" and inst and inst.state == "PENDING_CREATE":
                inst.state = "RUNNABLE"
    return Reply(body=operation_json(fake, op, call.email))


def list_operations(fake: FakeGCP, call: Call) -> Reply:
    ops = [operation_json(fake, op, call.email) for op in _project(fake, call).operations.values()]
    return Reply(body={"kind": "sql#operationsList", **({"items": ops} if ops else {})})


def _database_json(inst: Instance, db: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "sql#database", "instance": inst.name, "project": inst.project,
            "charset": "utf8mb4", "collation": "utf8mb4_general_ci", **db}


def insert_database(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call, runnable=True)
    body = dict(call.body or {})
    name = body.get("name")
    if not name:
        raise errors.error(400, "Missing parameter: name.", "required")
    if name in inst.databases:
        raise errors.sql_conflict("database")
    inst.databases[name] = {k: v for k, v in body.items() if k in {"name", "charset", "collation"}}
    fake.mirror_sql(inst, "database", name)
    op = _start_operation(fake, call, _project(fake, call), "CREATE_DATABASE", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def get_database(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    db = inst.databases.get(call.params["database"])
    if db is None:
        raise errors.sql_not_found("database")
    return Reply(body=_database_json(inst, db))


def list_databases(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    items = [_database_json(inst, db) for db in inst.databases.values()]
    return Reply(body={"kind": "sql#databasesList", **({"items": items} if items else {})})


def _user_json(inst: Instance, user: SqlUser) -> dict[str, Any]:
    body = {"kind": "sql#user", "name": user.name, "instance": inst.name,
            "project": inst.project, "type": user.type}
    if user.type not in IAM_USER_TYPES:
        body["host"] = user.host
    return body


def insert_user(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call, runnable=True)
    body = call.body or {}
    user_type = body.get("type", "BUILT_IN")
    name = body.get("name", "")
    if not name:
        raise errors.error(400, "Missing parameter: name.", "required")
    host = "" if user_type in IAM_USER_TYPES else body.get("host", "%")
    if (name, host) in inst.users:
        raise errors.error(409, "The user already exists.", "userAlreadyExists")
    user = SqlUser(name, host, user_type, body.get("password"))
    inst.users[(name, host)] = user
    fake.mirror_sql(inst, "user", name, user)
    op = _start_operation(fake, call, _project(fake, call), "CREATE_USER", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def list_users(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    items = [_user_json(inst, u) for u in inst.users.values()]
    return Reply(body={"kind": "sql#usersList", **({"items": items} if items else {})})


def delete_user(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call, runnable=True)
    name, host = call.arg("name", ""), call.arg("host", "")
    key = next((k for k in inst.users if k[0] == name and (not host or k[1] == host)), None)
    if key is None:
        raise errors.sql_not_found("user")
    fake.mirror_sql(inst, "user", key[0], inst.users.pop(key), drop=True)
    op = _start_operation(fake, call, _project(fake, call), "DELETE_USER", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def update_user(fake: FakeGCP, call: Call) -> Reply:
    """``users.update``: change a built-in user's password (``?name=&host=``)."""
    inst = _instance(fake, call, runnable=True)
    name, host = call.arg("name", ""), call.arg("host", "%")
    user = inst.users.get((name or "", host or "%"))
    if user is None:
        raise errors.sql_not_found("user")
    user.password = (call.body or {}).get("password", user.password)
    fake.mirror_sql(inst, "user", user.name, user)
    op = _start_operation(fake, call, _project(fake, call), "UPDATE_USER", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def delete_database(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call, runnable=True)
    if inst.databases.pop(call.params["database"], None) is None:
        raise errors.sql_not_found("database")
    fake.mirror_sql(inst, "database", call.params["database"], drop=True)
    op = _start_operation(fake, call, _project(fake, call), "DELETE_DATABASE", inst.name)
    return Reply(body=operation_json(fake, op, call.email))


def connect_settings(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    return Reply(body={
        "kind": "sql#connectSettings", "serverCaCert": _server_ca(fake, inst),
        "ipAddresses": [{"type": "PRIMARY", "ipAddress": fake.sql_ip}],
        "region": inst.region, "databaseVersion": inst.database_version,
        "backendType": "SECOND_GEN", "pscEnabled": False,
    })


def generate_ephemeral_cert(fake: FakeGCP, call: Call) -> Reply:
    inst = _instance(fake, call)
    body = call.body or {}
    public_key = body.get("public_key")
    if not public_key:
        raise errors.error(400, "Missing parameter: public_key.", "required")
    try:
        pem, serial = fake.ca.sign_pem(public_key, call.email)
    except ValueError as exc:
        raise errors.error(400, "Provided public key was in an invalid or unsupported format.",
                           "invalid") from exc
    fake.grants[serial] = CertGrant(inst.project, inst.name, call.email, body.get("access_token"))
    return Reply(body={"ephemeralCert": {"kind": "sql#sslCert", "cert": pem,
                                         "certSerialNumber": str(serial),
                                         "commonName": call.email, "instance": inst.name}})


HANDLERS = {
    "sql.instances.insert": insert_instance,
    "sql.instances.get": get_instance,
    "sql.instances.list": list_instances,
    "sql.instances.patch": patch_instance,
    "sql.instances.delete": delete_instance,
    "sql.operations.get": get_operation,
    "sql.operations.list": list_operations,
    "sql.databases.insert": insert_database,
    "sql.databases.get": get_database,
    "sql.databases.list": list_databases,
    "sql.databases.delete": delete_database,
    "sql.users.update": update_user,
    "sql.users.insert": insert_user,
    "sql.users.list": list_users,
    "sql.users.delete": delete_user,
    "sql.connect.get": connect_settings,
    "sql.connect.generateEphemeralCert": generate_ephemeral_cert,
    **sqladmin_catalog.HANDLERS,
}
