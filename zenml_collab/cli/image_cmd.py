"""``collab image build [--push]``: the image docker and vertex steps run in."""

from __future__ import annotations

import click


@click.group("image")
def image() -> None:
    """Build and push the image remote steps run in (dependencies only; code travels apart)."""


@image.command("build")
@click.option("--tag", default=None, help="Image tag (default collab-steps:latest; for --push "
              "REGION-docker.pkg.dev/PROJECT/REPO/collab-steps:TAG).")
@click.option("--base", default=None, help="Base image (default python:<your minor>-slim).")
@click.option("--no-index", is_flag=True, help="Install without a package index (offline base "
              "images that already hold the dependencies).")
@click.option("--push", is_flag=True, help="Push to the tag's registry and record the digest.")
def build(tag: str | None, base: str | None, no_index: bool, push: bool) -> None:
    """Build the step image with the local docker daemon and record it in .collab/local.yaml."""
    from zenml_collab.config import ComputeConfig, load_local_config, write_local_config
    from zenml_collab.core.backends.image import DEFAULT_TAG, build_image, push_image
    from zenml_collab.core.repository import find_root
    from zenml_collab.errors import ConnectivityError

    root = find_root()
    try:
        import docker

        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        raise ConnectivityError(f"cannot reach the docker daemon: {exc}",
                                "start docker (or set DOCKER_HOST)") from None
    try:
        built = build_image(client, root, tag=tag or DEFAULT_TAG, base=base, no_index=no_index)
        if push:
            built = push_image(client, built)
    finally:
        client.close()
    recorded = built.digest or built.id
    local = load_local_config(root)
    compute = (local.compute or ComputeConfig()).model_copy(update={"image": built.digest
                                                                    or built.tag})
    write_local_config(root, local.model_copy(update={"compute": compute}))
    click.echo(f"built {built.tag} ({recorded})")
    click.echo("recorded as compute.image in .collab/local.yaml"
               + ("; put it in collab.yaml (compute.image) to share it with the team"
                  if built.digest else ""))
