"""`portlab show`"""

from __future__ import annotations

import sys

import click

from portlab.cli.common import core, instance_option, param_option, parse_params


@click.command("show")
@click.argument("lab")
@instance_option
@param_option
def command(lab: str, instance: str | None, params: tuple[str, ...]) -> None:
    """Show a lab's brief: the story, the network drawn out, the tasks and how to get in.

    If the lab is running, the addresses, keys and params are the running
    instance's own. With --param, the lab as it is with those values.
    """
    click.echo(core().show(lab, instance=instance, params=parse_params(params),
                           color=bool(sys.stdout.isatty())), nl=False)
