"""`portlab doctor`"""

from __future__ import annotations

import textwrap

import click

from portlab.cli.common import color, core, say
from portlab.doctor.checks import every_check

HELP = """Check this machine for what labs need, say what was found, and give the fix.

\b
Exit codes: 0 all is well, 1 warnings (labs run; something is slower,
weaker or surprising), 3 labs cannot run (or some of them cannot).
One throwaway container of the node image is started (no network) to
look at the kernel as a node sees it, and removed at once.

\b
What each check is for:
""" + "\n".join(textwrap.fill(purpose, 78, initial_indent=f"  {name:<17} ",
                                subsequent_indent=" " * 20)
                  for name, purpose in every_check().items()) + """

With --json, the format in docs/doctor-json.md."""


@click.command("doctor", help=HELP)
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (format documented in docs/doctor-json.md).")
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    from portlab.views import doctor

    report = core().doctor()
    if as_json:
        click.echo(doctor.as_json(report))
    else:
        say(doctor.terminal(report, color=color()), nl=False)
    ctx.exit(report.exit_code)
