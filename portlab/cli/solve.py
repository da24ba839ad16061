"""`portlab solve`"""

from __future__ import annotations

import click

from portlab.cli.common import core, instance_option


@click.command("solve")
@click.argument("lab", required=False)
@instance_option
@click.option("--wrong", metavar="NAME",
              help="Apply one of the lab's known wrong solutions instead (for demos and tests).")
def command(lab: str | None, instance: str | None, wrong: str | None) -> None:
    """Apply the lab's reference solution to the running lab (for trainers and tests)."""
    inst, applied = core().solve(lab, instance=instance, wrong=wrong)
    what = "the reference solution" if applied == "solution" else f"wrong solution '{applied}'"
    click.echo(f"Applied {what} to instance '{inst.name}'. Now run `portlab check`.")
