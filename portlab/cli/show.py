"""`portlab show`"""

from __future__ import annotations

from pathlib import Path

import click

from portlab.cli.common import (
    color,
    core,
    instance_option,
    param_option,
    parse_params,
    salt_option,
    say,
    student_option,
    terminal_width,
)


@click.command("show")
@click.argument("lab")
@instance_option
@param_option
@student_option
@salt_option
@click.option("--diagram", "diagram", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Instead, draw the network into FILE: SVG or PNG, by its "
              "suffix (needs Graphviz's `dot`).")
def command(lab: str, instance: str | None, params: tuple[str, ...], student: str | None,
            salt: str | None, diagram: Path | None) -> None:
    """Show a lab's brief: the story, the network drawn out, the tasks and how to get in.

    If the lab is running, the addresses, keys and params are the running
    instance's own. With --param, the lab as it is with those values; with
    --student, that student's variant, exactly as it is graded.

    With --diagram FILE, draw the network as a picture instead (for slides and
    handouts): every node with its interfaces and addresses, which network is
    the internet, and the node you work on.

    \b
      portlab show forwarding --diagram forwarding.svg
      portlab show vpn --diagram vpn.png
    """
    if diagram is not None:
        fmt = core().diagram(lab, diagram, instance=instance, params=parse_params(params),
                             student=student, salt=salt)
        click.echo(f"wrote the {lab} network as {fmt.upper()} to {diagram}")
        return
    say(core().show(lab, instance=instance, params=parse_params(params), student=student,
                    salt=salt, color=color(), width=terminal_width()), nl=False)
