"""`portlab check`"""

from __future__ import annotations

import os
import sys

import click

from portlab.cli.common import color, core, instance_option
from portlab.errors import ExitCode, UsageError


@click.command("check")
@click.argument("lab", required=False)
@instance_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable results (format documented in docs/check-json.md).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write JUnit XML to this file (for CI systems).")
@click.option("--only", multiple=True, metavar="CHECK", help="Run only this check (repeatable).")
@click.option("--verbose", "-v", is_flag=True, help="Show the traffic of passed checks too.")
def command(lab: str | None, instance: str | None, as_json: bool, junit_file: str | None,
            only: tuple[str, ...], verbose: bool) -> None:
    """Check a running lab by sending real traffic through it.

    Prints a line per check; for a failure, what was sent, from where, to
    where, what came back, and a hint. A check portlab could not observe (a
    node's tool missing, an interface gone) is an ERROR, with what to do: it
    is never counted as passed.

    \b
    Exit codes: 0 every check passed, 1 some failed, 3 some could not be
    judged (errors), 2 a mistake in what was typed.
    """
    from portlab.probes.base import Outcome
    from portlab.views import report

    exit_codes = {Outcome.PASS: ExitCode.OK, Outcome.FAIL: ExitCode.CHECKS_FAILED,
                  Outcome.ERROR: ExitCode.RUNTIME}

    if junit_file and not os.path.isdir(os.path.dirname(os.path.abspath(junit_file))):
        raise UsageError(f"cannot write the JUnit file {junit_file}: its directory does not exist")
    result = core().check(lab, instance=instance, only=list(only) or None)
    if junit_file:
        try:
            with open(junit_file, "w") as fh:
                fh.write(report.junit(result))
        except OSError as exc:
            raise UsageError(f"cannot write the JUnit file {junit_file}: "
                             f"{exc.strerror or exc}") from None
    if as_json:
        click.echo(report.as_json(result))
    else:
        click.echo(report.terminal(result, color=color(), verbose=verbose))
    sys.exit(int(exit_codes[result.outcome]))
