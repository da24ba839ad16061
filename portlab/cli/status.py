"""`portlab status`"""

from __future__ import annotations

import json

import click

from portlab.cli.common import core, instance_option, say


@click.command("status")
@click.argument("lab", required=False)
@instance_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (format documented in docs/status-json.md).")
def command(lab: str | None, instance: str | None, as_json: bool) -> None:
    """Show running labs: nodes, interfaces and addresses, WireGuard kind, image, params."""
    from portlab.runtime.inspect import STATUS_FORMAT
    from portlab.views import status

    rows = core().status(lab, instance=instance)
    if as_json:
        click.echo(json.dumps({"format": STATUS_FORMAT, "instances": rows}, indent=2))
    else:
        say(status.text(rows), nl=False)
