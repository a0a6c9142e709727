"""Checks of the artifact bucket: it exists where expected, it is locked down, it works."""

from __future__ import annotations

import shlex

from zenml_collab.actions.doctor.context import DoctorContext
from zenml_collab.actions.doctor.model import Check, CheckResult, NotApplicable, failed, passed, warned
from zenml_collab.infra.gcp.buckets import BucketInfo

MULTI_REGIONS = {"EU": "europe-", "US": "us-", "ASIA": "asia-"}


def bucket_location(ctx: DoctorContext) -> tuple[str, str]:
    """``(bucket, prefix)`` of the artifact store (``gs://`` URI, else ``gcp.bucket``)."""
    uri = ctx.settings().artifacts.uri
    if uri.startswith("gs://"):
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        return bucket, prefix
    gcp = ctx.gcp()
    if gcp is None:
        raise NotApplicable(f"the artifact store is local ({uri}), not a bucket")
    return gcp.bucket, ""


def bucket_info(ctx: DoctorContext) -> BucketInfo | None:
    """The bucket's metadata, fetched once per doctor run."""
    from zenml_collab.infra.gcp import buckets

    def build() -> BucketInfo | None:
        bucket, _ = bucket_location(ctx)
        clients = ctx.clients()
        return buckets.get_bucket_info(clients.storage, bucket, retry=clients.retry)

    return ctx.memo("bucket_info", build)


def readable_bucket_info(ctx: DoctorContext) -> BucketInfo | None:
    """:func:`bucket_info`, or skip when the member may not read the bucket's metadata.

    Without ``storage.buckets.get`` the metadata stays unknown; iam.bucket still asks the bucket
    which permissions the member holds (that needs none) and names every missing role.
    """
    from zenml_collab.errors import CollabError

    try:
        return bucket_info(ctx)
    except CollabError as exc:
        if exc.exit_code != 3:
            raise
        bucket, _ = bucket_location(ctx)
        raise NotApplicable(f"you may not read gs://{bucket}'s metadata "
                            "(iam.bucket names the missing roles)") from None


def _create_command(bucket: str, ctx: DoctorContext) -> str:
    gcp = ctx.gcp()
    project = f" --project={shlex.quote(gcp.project)}" if gcp else ""
    location = f" --location={shlex.quote(gcp.region)}" if gcp else ""
    return (f"gcloud storage buckets create {shlex.quote('gs://' + bucket)}{project}{location} "
            "--uniform-bucket-level-access --public-access-prevention")


def _same_place(location: str, region: str) -> bool:
    location, region = location.upper(), region.lower()
    if location.lower() == region:
        return True
    prefix = MULTI_REGIONS.get(location)
    return bool(prefix and region.startswith(prefix))


def check_exists(ctx: DoctorContext) -> CheckResult:
    bucket, _ = bucket_location(ctx)
    info = readable_bucket_info(ctx)
    if info is None:
        return failed(f"gs://{bucket} does not exist",
                      f"an admin creates it: `{_create_command(bucket, ctx)}` "
                      "(or runs `collab bootstrap`)")
    gcp = ctx.gcp()
    if gcp is not None and not _same_place(info.location, gcp.region):
        return warned(f"gs://{bucket} is in {info.location}, the database in {gcp.region}: "
                      "every artifact crosses regions (slower, and billed as egress)",
                      f"nothing breaks; for speed, an admin can create a bucket in "
                      f"{gcp.region} and the team moves to it with `collab config artifacts "
                      "set gs://NEW-BUCKET/PREFIX --team`")
    return passed(f"gs://{bucket} exists in {info.location}")


def check_security(ctx: DoctorContext) -> CheckResult:
    bucket, _ = bucket_location(ctx)
    info = readable_bucket_info(ctx)
    if info is None:
        raise NotApplicable(f"gs://{bucket} does not exist")
    problems: list[str] = []
    fixes: list[str] = []
    quoted = shlex.quote(f"gs://{bucket}")
    if not info.ubla:
        problems.append("uniform bucket-level access is off (object ACLs can grant access "
                        "the bucket's IAM policy does not show)")
        fixes.append(f"`gcloud storage buckets update {quoted} --uniform-bucket-level-access`")
    if info.public_access_prevention != "enforced":
        problems.append(f"public access prevention is {info.public_access_prevention!r}, not "
                        "enforced (one wrong binding could publish every artifact)")
        fixes.append(f"`gcloud storage buckets update {quoted} --public-access-prevention`")
    if problems:
        return warned(f"gs://{bucket}: " + "; ".join(problems),
                      "an admin runs " + " and ".join(fixes))
    return passed(f"gs://{bucket}: uniform bucket-level access on, public access prevention "
                  "enforced")


def check_probe(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import buckets

    bucket, prefix = bucket_location(ctx)
    clients = ctx.clients()
    probe = buckets.probe_object(clients.storage, bucket, prefix, retry=clients.retry)
    return passed(f"wrote, read back and deleted gs://{bucket}/{probe.object_name} "
                  f"({probe.write_ms:.0f} / {probe.read_ms:.0f} / {probe.delete_ms:.0f} ms)")


CHECKS = (
    Check("bucket.exists", "artifact bucket exists", check_exists, ("gcp.api.storage",),
          timeout=8),
    Check("bucket.security", "bucket access is uniform and never public", check_security,
          ("bucket.exists",), timeout=8),
    Check("bucket.probe", "write, read and delete a probe object", check_probe,
          ("iam.bucket", "bucket.exists"), timeout=10, category="connectivity"),
)
