"""`portlab image build` and `portlab image tag`"""

from __future__ import annotations

import click

from portlab.cli.common import core, progress


@click.group("image")
def group() -> None:
    """The node image every lab runs on."""


@group.command("build")
@click.option("--offline", "offline", flag_value=True, default=None,
              help="Build with mmdebstrap from Debian's packages (no registry needed).")
@click.option("--registry", "offline", flag_value=False,
              help="Build from debian:bookworm-slim pulled from a registry.")
@click.option("--force", is_flag=True, help="Rebuild the base even if it exists.")
def build(offline: bool | None, force: bool) -> None:
    """Build the node image. Without options, uses a registry if one answers, else mmdebstrap.

    The tag carries a hash of the package list and portlab's node tools, so it
    changes exactly when what goes into the image changes.
    """
    api = core()
    tag = api.image_tag()
    if not force and api.image_exists(tag):
        click.echo(f"{tag} is already built (use --force to rebuild).")
        return
    click.echo(f"Built {api.image_build(progress(), offline=offline, force=force)}.")


@group.command("tag")
def tag() -> None:
    """Print the node image tag this version of portlab uses."""
    click.echo(core().image_tag())
