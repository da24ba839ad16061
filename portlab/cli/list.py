"""`portlab list`"""

from __future__ import annotations

import click

from portlab.cli.common import core, say


@click.command("list")
def command() -> None:
    """List the labs along the learning path: grouped by difficulty, each with its title
    and what it teaches, the ones you solved marked.

    A lab counts as solved once `portlab check` passed every check of it; the
    record is a small file in your state directory
    ($XDG_STATE_HOME/portlab/progress.json). `portlab next` names the lab to
    do next. A lab folder whose lab.yaml does not load is named apart, with
    why, and never hides the others.
    """
    from portlab.views import listing

    path = core().path()
    found, done = path.catalog, path.solved
    say(listing.labs(found.labs, done) + listing.summary(found.labs, done, path.next), nl=False)
    if found.broken:
        click.echo(listing.broken(found.broken), nl=False, err=True)
