"""``collab image build --push`` against a real registry: Debian's docker-registry (Docker
Distribution 2.8) on a free 127.0.0.1 port, which dockerd treats as insecure (plain http) by
default. The tag names the registry, as REGION-docker.pkg.dev/PROJECT/REPO/... does for the team."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.testing.services._process import free_port, http_ok, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REGISTRY_BIN = "/usr/bin/docker-registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a private docker-registry storing its blobs under tmp_path."""
    if not Path(REGISTRY_BIN).is_file() and not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed (scripts/test installs the Debian package)")
    binary = REGISTRY_BIN if Path(REGISTRY_BIN).is_file() else str(shutil.which("docker-registry"))
    port = free_port()
    root = tmp_path / "registry"
    root.mkdir()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("docker-registry", lambda: http_ok(f"http://127.0.0.1:{port}/v2/"), 30,
                 process.pid, log)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_collab_image_build_push_pushes_to_the_tags_registry_and_records_its_manifest_digest(
        tmp_path: Path, registry: str, docker_client: Any, step_image: str) -> None:
    from zenml_collab.config import load_local_config
    from zenml_collab.testing.base_image import ensure_base_image
    from zenml_collab.testing.repos import make_git_repo

    repo = tmp_path / "repo"
    make_git_repo(repo)
    (repo / ".collab").mkdir()
    base = ensure_base_image(docker_client)
    name, version = "collab/collab-steps", "v1"
    tag = f"{registry}/{name}:{version}"
    done = subprocess.run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()",
                           "image", "build", "--base", base, "--no-index", "--tag", tag, "--push"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"built {tag} (" in done.stdout

    # The registry lists the repository and the tag.
    assert name in _get_json(f"http://{registry}/v2/_catalog")["repositories"]
    assert _get_json(f"http://{registry}/v2/{name}/tags/list") == {"name": name,
                                                                    "tags": [version]}

    # What the build recorded is the digest the registry serves for the tag.
    recorded = (load_local_config(repo).compute or pytest.fail("no compute section")).image
    assert recorded is not None and recorded.startswith(f"{registry}/{name}@sha256:"), recorded
    request = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{version}",
                                     method="HEAD", headers={"Accept": MANIFEST_V2})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == MANIFEST_V2
        served = response.headers["Docker-Content-Digest"]
    assert recorded.split("@", 1)[1] == served
    assert f"({recorded})" in done.stdout
    assert "put it in collab.yaml (compute.image)" in done.stdout



def test_push_image_of_an_image_already_in_another_repository_records_the_pushed_repositorys_digest(
        registry: str, docker_client: Any, step_image: str) -> None:
    """One image (a cached build, a retag) pushed to two repositories holds two RepoDigests:
    the digest recorded must name the repository just pushed to, not whichever docker lists
    first."""
    from zenml_collab.core.backends.image import BuiltImage, push_image

    image = docker_client.images.get(step_image)
    pushed: dict[str, str | None] = {}
    for name in ("collab/a-steps", "collab/b-steps"):  # the first pushed sorts first
        tag = f"{registry}/{name}:v1"
        assert image.tag(f"{registry}/{name}", "v1")
        built = push_image(docker_client, BuiltImage(tag, image.id, None, ""))
        pushed[name] = built.digest
    assert len(docker_client.images.get(step_image).attrs["RepoDigests"]) == 2
    for name, digest in pushed.items():
        assert digest is not None and digest.startswith(f"{registry}/{name}@sha256:"), pushed
        request = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/v1",
                                         method="HEAD", headers={"Accept": MANIFEST_V2})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert digest.split("@", 1)[1] == response.headers["Docker-Content-Digest"]


@pytest.mark.parametrize(("tag", "expected"), [
    ("127.0.0.1:5000/collab/steps:v1", ("127.0.0.1:5000/collab/steps", "v1")),
    ("127.0.0.1:5000/collab/steps", ("127.0.0.1:5000/collab/steps", "latest")),
    ("europe-docker.pkg.dev/p/r/steps:abc", ("europe-docker.pkg.dev/p/r/steps", "abc")),
    ("steps", ("steps", "latest")),
])
def test_a_registry_port_is_not_taken_for_the_tags_version(
        tag: str, expected: tuple[str, str]) -> None:
    from zenml_collab.core.backends.image import split_tag

    assert split_tag(tag) == expected


def test_push_image_of_a_tag_with_a_registry_port_and_no_version_pushes_latest(
        registry: str, docker_client: Any, step_image: str) -> None:
    from zenml_collab.core.backends.image import BuiltImage, push_image

    image = docker_client.images.get(step_image)
    repository = f"{registry}/collab/unversioned"
    assert image.tag(repository, "latest")
    built = push_image(docker_client, BuiltImage(repository, image.id, None, ""))
    assert built.digest is not None and built.digest.startswith(f"{repository}@sha256:")
    with urllib.request.urlopen(f"http://{registry}/v2/collab/unversioned/tags/list",
                                timeout=10) as response:
        assert json.loads(response.read())["tags"] == ["latest"]


@pytest.mark.parametrize("tag", ["steps@sha256:" + "a" * 64,
                                 "127.0.0.1:5000/steps@sha256:" + "a" * 64,
                                 "team/steps:", ":v1"])
def test_a_digest_or_an_empty_version_is_refused_before_any_push(tag: str) -> None:
    from zenml_collab.core.backends.image import split_tag
    from zenml_collab.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot push"):
        split_tag(tag)
