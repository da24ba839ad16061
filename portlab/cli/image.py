"""`portlab image build` and `portlab image tag`"""

from __future__ import annotations

import click

from portlab.cli.common import core, progress, verbose_option


@click.group("image")
def group() -> None:
    """The node image every lab runs on."""


@group.command("build")
@click.option("--offline", "offline", flag_value=True, default=None,
              help="Build with mmdebstrap from Debian's packages (no registry needed).")
@click.option("--registry", "offline", flag_value=False,
              help="Build from debian:bookworm-slim pulled from a registry.")
@click.option("--force", is_flag=True, help="Rebuild the base even if it exists.")
@verbose_option
def build(offline: bool | None, force: bool, verbose: bool) -> None:
    """Build the node image. Without options, uses a registry if one answers, else mmdebstrap.

    \b
    Two steps, each shown with last time's duration as its estimate:
      1. the base: Debian's packages (nmap, tcpdump, OpenSSH, WireGuard, nftables,
         curl, Python) made into a root filesystem, about a minute;
      2. the node layer: portlab's own tools on the base, a few seconds.
    The tag carries a hash of the package list and portlab's node tools, so it
    changes exactly when what goes into the image changes, and only that step
    runs again. The tools' whole output goes to a build log (its path is in any
    error); --verbose prints it as well.
    """
    api = core()
    tag = api.image_tag()
    if not force and api.image_exists(tag):
        click.echo(f"{tag} is already built (use --force to rebuild).")
        return
    click.echo(f"Built {api.image_build(progress(verbose=verbose), offline=offline, force=force)}.")


@group.command("tag")
def tag() -> None:
    """Print the node image tag this version of portlab uses."""
    click.echo(core().image_tag())
