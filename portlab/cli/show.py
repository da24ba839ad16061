"""`portlab show`"""

from __future__ import annotations

import sys

import click

from portlab.cli.common import (
    core,
    instance_option,
    param_option,
    parse_params,
    salt_option,
    student_option,
)


@click.command("show")
@click.argument("lab")
@instance_option
@param_option
@student_option
@salt_option
def command(lab: str, instance: str | None, params: tuple[str, ...], student: str | None,
            salt: str | None) -> None:
    """Show a lab's brief: the story, the network drawn out, the tasks and how to get in.

    If the lab is running, the addresses, keys and params are the running
    instance's own. With --param, the lab as it is with those values; with
    --student, that student's variant, exactly as it is graded.
    """
    click.echo(core().show(lab, instance=instance, params=parse_params(params),
                           student=student, salt=salt, color=bool(sys.stdout.isatty())),
               nl=False)
