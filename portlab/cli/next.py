"""`portlab next`"""

from __future__ import annotations

import click

from portlab.cli.common import core, say


@click.command("next")
def command() -> None:
    """Suggest the next lab of the learning path: the first one you have not solved.

    A lab counts as solved once `portlab check` passed every check of it (the
    record: $XDG_STATE_HOME/portlab/progress.json, else
    ~/.local/state/portlab/progress.json; delete it to start over).
    """
    from portlab.views import listing

    path = core().path()
    say(listing.suggestion(path.next, path.catalog.labs, path.solved), nl=False)
