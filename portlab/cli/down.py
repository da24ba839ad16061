"""`portlab down`"""

from __future__ import annotations

import time

import click

from portlab.cli.common import core, instance_option, progress


@click.command("down")
@click.argument("lab", required=False)
@instance_option
@click.option("--all", "everything", is_flag=True,
              help="Remove every lab instance of this scope (your own, unless $PORTLAB_SCOPE "
                   "says otherwise).")
def command(lab: str | None, instance: str | None, everything: bool) -> None:
    """Remove a running lab: its containers and networks, and nothing else.

    With no LAB, removes the only running lab. `--all` removes every instance
    portlab started in this scope (found by their labels), whichever lab they
    run; other users' labs are in scopes of their own and are never touched.
    """
    from portlab.views import lifecycle

    start = time.monotonic()
    removed = core().down(lab, instance=instance, everything=everything, progress=progress(True))
    click.echo(lifecycle.down_summary(removed, time.monotonic() - start))
