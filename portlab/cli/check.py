"""`portlab check`"""

from __future__ import annotations

import os
import sys

import click

from portlab.cli.common import color, core, instance_option, say
from portlab.errors import ExitCode, UsageError


@click.command("check")
@click.argument("lab", required=False)
@instance_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable results (format documented in docs/check-json.md).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write JUnit XML to this file (for CI systems).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              metavar="FILE", help="Also write a self-contained HTML report to FILE: the "
              "diagram, each check with what was sent and what came back, and the hints.")
@click.option("--only", multiple=True, metavar="CHECK", help="Run only this check (repeatable).")
@click.option("--verbose", "-v", is_flag=True, help="Show the traffic of passed checks too.")
@click.option("--reveal", is_flag=True, help="Show the commands that solve each failed check "
              "now (otherwise they come from its third failure in a row).")
def command(lab: str | None, instance: str | None, as_json: bool, junit_file: str | None,
            html_file: str | None, only: tuple[str, ...], verbose: bool, reveal: bool) -> None:
    """Check a running lab by sending real traffic through it.

    Prints a line per check; for a failure, what was sent, from where, to
    where, what came back, and a hint for what was seen. Where the lab names
    them, your own firewall rules are shown too, in order, marked where the
    probe's packets matched. The commands that solve a check come from its
    third failure in a row (or at once with --reveal). A check portlab could not observe (a
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

    for what, path in (("JUnit file", junit_file), ("HTML report", html_file)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"cannot write the {what} {path}: its directory does not exist")
    result = core().check(lab, instance=instance, only=list(only) or None, reveal=reveal)
    if junit_file:
        _write(junit_file, "JUnit file", report.junit(result))
    if html_file:
        _write(html_file, "HTML report", core().check_html(result))
    if as_json:
        click.echo(report.as_json(result))
    else:
        say(report.terminal(result, color=color(), verbose=verbose))
    sys.exit(int(exit_codes[result.outcome]))


def _write(path: str, what: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
