"""`portlab prune`"""

from __future__ import annotations

import click

from portlab.cli.common import core, progress


@click.command("prune")
@click.option("--images", is_flag=True,
              help="Also remove portlab's images that no container uses (old node image tags), "
                   "keeping the ones this portlab uses.")
@click.option("--all-images", is_flag=True,
              help="Like --images, and the current node and base images too (the next `up` "
                   "builds them again).")
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
def command(images: bool, all_images: bool, dry_run: bool) -> None:
    """Remove everything portlab left behind in this scope, and nothing else.

    \b
    Always: every container and network labelled with this scope
    ($PORTLAB_SCOPE, by default one of your own: your login name), whichever
    lab instance it belongs to, the layers of interrupted image builds and
    the lock files of a `portlab up` that was killed outright. With --images:
    portlab's images (portlab/node, portlab/node-base) that no container of
    any scope uses. Never other scopes' labs (another user's), never other
    images, never a container or network without portlab's labels.
    """
    from portlab.views import lifecycle

    got = core().prune(images=images or all_images, current=all_images, dry_run=dry_run,
                       progress=progress(True))
    click.echo(lifecycle.prune_summary(got))
