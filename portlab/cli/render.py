"""`portlab render`"""

from __future__ import annotations

import click

from portlab.cli.common import core, instance_option, param_option, parse_params


@click.command("render")
@click.argument("lab")
@instance_option
@param_option
def command(lab: str, instance: str | None, params: tuple[str, ...]) -> None:
    """Print the compose file `portlab up` would start, without starting anything."""
    click.echo(core().render_compose(lab, instance=instance, params=parse_params(params)),
               nl=False)
