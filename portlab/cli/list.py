"""`portlab list`"""

from __future__ import annotations

import click

from portlab.cli.common import core


@click.command("list")
def command() -> None:
    """List the labs in a suggested order: name, difficulty, title and what each teaches.

    A lab folder whose lab.yaml does not load is named apart, with why, and
    never hides the others.
    """
    from portlab.views import listing

    found = core().catalog()
    click.echo(listing.labs(found.labs), nl=False)
    if found.broken:
        click.echo(listing.broken(found.broken), nl=False, err=True)
