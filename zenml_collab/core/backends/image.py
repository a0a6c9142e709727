"""``collab image build``: the image remote steps run in (dependencies only; code travels apart).

The Dockerfile starts from ``python:<the member's minor version>-slim``, installs the
repository's declared requirements (``requirements.txt`` when present) and the same
zenml-collab the member runs: a wheel built from its source tree when it is a checkout, else
the released version from the package index. The image digest, not the tag, is what runs
record. Offline (tests): ``base=`` names a local image that already holds the dependencies and
``no_index=True`` keeps pip from looking for an index.
"""

from __future__ import annotations

import io
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.errors import ConfigError, ConnectivityError

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_TAG = "collab-steps:latest"


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    id: str
    digest: str | None  # registry digest once pushed
    dockerfile: str


def default_base() -> str:
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def collab_version() -> str:
    from importlib.metadata import version

    return version("zenml-collab")


def render_dockerfile(*, base: str, has_requirements: bool, wheel: str | None,
                      version: str, no_index: bool) -> str:
    pip = "pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore"
    if no_index:
        pip += " --no-index"
    lines = [f"FROM {base}", "ENV PYTHONUNBUFFERED=1 PIP_NO_INPUT=1"]
    if has_requirements:
        lines += ["COPY requirements.txt /tmp/collab/requirements.txt",
                  f"RUN {pip} -r /tmp/collab/requirements.txt"]
    if wheel:
        lines += [f"COPY {wheel} /tmp/collab/{wheel}", f"RUN {pip} /tmp/collab/{wheel}"]
    else:
        lines += [f"RUN {pip} zenml-collab=={version}"]
    lines += ["WORKDIR /root", 'ENTRYPOINT []', 'CMD ["python3", "-m", "zenml_collab.worker", "--help"]']
    return "\n".join(lines) + "\n"


def build_wheel(out: Path) -> Path:
    """A wheel of the zenml-collab this process runs (editable checkout or installed), built
    without setuptools, a network or writes into the source tree: the package files, the
    installed distribution's METADATA and entry points, and a RECORD."""
    import base64
    import hashlib
    import importlib.metadata as md
    import zipfile

    import zenml_collab

    dist = md.distribution("zenml-collab")
    version = dist.version
    info = f"zenml_collab-{version}.dist-info"
    package = Path(zenml_collab.__file__).resolve().parent
    entries: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package.parent)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            entries.append((rel.as_posix(), path.read_bytes()))
    # An editable checkout may be seen through its egg-info, which calls the file PKG-INFO.
    meta = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    entries.append((f"{info}/METADATA", meta.encode()))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: zenml-collab\n"
                    b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    wheel = out / f"zenml_collab-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _context(repo_root: Path, dockerfile: str, wheel: Path | None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        requirements = repo_root / "requirements.txt"
        if requirements.is_file():
            tar.add(str(requirements), arcname="requirements.txt")
        if wheel is not None:
            tar.add(str(wheel), arcname=wheel.name)
    return buffer.getvalue()


def build_image(client: DockerClient, repo_root: Path, *, tag: str = DEFAULT_TAG, base: str | None = None,
                no_index: bool = False) -> BuiltImage:
    """Build the step image with ``client`` (docker SDK); returns its id (the digest to record)."""
    import docker

    with tempfile.TemporaryDirectory(prefix="collab-image-") as tmp:
        wheel = build_wheel(Path(tmp))
        dockerfile = render_dockerfile(
            base=base or default_base(), has_requirements=(repo_root / "requirements.txt").is_file(),
            wheel=wheel.name, version=collab_version(), no_index=no_index)
        context = _context(repo_root, dockerfile, wheel)
        try:
            image, _logs = client.images.build(fileobj=io.BytesIO(context), custom_context=True,
                                               tag=tag, rm=True, forcerm=True, network_mode="none"
                                               if no_index else None)
        except docker.errors.BuildError as exc:
            tail = " | ".join(str(c.get("stream", c.get("error", ""))).strip()
                              for c in list(exc.build_log)[-5:])
            raise ConfigError(f"the image build failed: {exc.msg}: {tail}"[:1500],
                              "check requirements.txt and the base image") from None
        except docker.errors.APIError as exc:
            raise ConnectivityError(f"docker refused the build: {exc.explanation}",
                                    "is the docker daemon running and the base image present?"
                                    ) from None
    return BuiltImage(tag=tag, id=image.id, digest=None, dockerfile=dockerfile)


def split_tag(tag: str) -> tuple[str, str]:
    """``registry:5000/team/image:v1`` -> (``registry:5000/team/image``, ``v1``); a tag
    without a version is ``latest`` (the colon of a registry's port is not a version).

    A digest (``image@sha256:...``) names content, not a place to push to; an empty version
    (``image:``) would make docker push every tag of the repository: both are refused.
    """
    if "@" in tag:
        raise ConfigError(f"cannot push {tag!r}: it is a digest, not a tag",
                          "tag the image (REGISTRY/REPOSITORY/IMAGE:VERSION) and push that")
    repository, colon, version = tag.rpartition(":")
    if not colon or "/" in version:
        return tag, "latest"
    if not version or not repository:
        raise ConfigError(f"cannot push {tag!r}: its version is empty",
                          "use REGISTRY/REPOSITORY/IMAGE:VERSION, or no ':' for latest")
    return repository, version


def push_image(client: DockerClient, built: BuiltImage) -> BuiltImage:
    """Push ``built`` to its registry (the tag names it); returns it with the registry digest."""
    repository, version = split_tag(built.tag)
    pushed: str | None = None
    for line in client.images.push(repository, tag=version, stream=True, decode=True):
        if "error" in line:
            raise ConnectivityError(f"push of {built.tag} failed: {line['error']}",
                                    "run `gcloud auth configure-docker REGION-docker.pkg.dev` "
                                    "and check roles/artifactregistry.writer on the repository")
        aux = line.get("aux") or {}
        if aux.get("Tag") == version and aux.get("Digest"):
            pushed = str(aux["Digest"])
    image = client.images.get(built.tag)
    # An image already pushed elsewhere (a cached build, a retag) holds one RepoDigest per
    # repository, sorted by name: record the one of the repository just pushed to.
    digests = [d for d in image.attrs.get("RepoDigests") or []
               if d.rpartition("@")[0] == repository]
    digest = f"{repository}@{pushed}" if pushed else (digests[0] if digests else None)
    return BuiltImage(built.tag, image.id, digest, built.dockerfile)
