"""`portlab test LAB`: does the lab do what it declares, on real containers?"""

from __future__ import annotations

import json
import sys

import click

from portlab.cli.common import color, core, progress, say
from portlab.errors import ExitCode, UsageError


@click.command("test")
@click.argument("labs", nargs=-1, metavar="[LAB]...")
@click.option("--all", "every", is_flag=True,
              help="Every lab portlab finds (the shipped ones and PORTLAB_LABS_PATH's), all "
                   "their cases in one pool.")
@click.option("--case", "only", multiple=True, metavar="NAME",
              help="Only this case (repeatable): untouched, solution, a wrong solution's "
                   "name, or a mutant's (forward-open@router).")
@click.option("--no-mutants", is_flag=True,
              help="Only the lab's own cases, not the mutant battery (quicker while writing "
                   "a lab).")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), metavar="N",
              help="Cases at once, each a whole lab of containers (default: one per core).")
@click.option("--json", "json_out", is_flag=True, help="Print the result as one JSON object.")
def command(labs: tuple[str, ...], every: bool, only: tuple[str, ...], no_mutants: bool,
            jobs: int | None, json_out: bool) -> None:
    """Test a lab, yours or a shipped one, the way the test suite tests the shipped ones.
    Several labs (or --all) share one pool of cases: none waits for another lab's slowest.

    Each case runs on a fresh instance of its own, with real traffic: the
    untouched lab must fail exactly its `untouched.fails`, the reference
    solution must pass every check, and each wrong solution must fail exactly
    its `fails` (stretch checks it does not name aside). A check that could
    not be judged is a mismatch, never a pass.

    Then the mutants: the reference solution plus one plausible mistake or
    cheat each, made from what the lab is (a router's FORWARD chain opened, a
    port forward replaced by a relay or by a copy of the server on the router,
    a server that should keep running stopped, a split tunnel, ...). Each
    must fail at least one check (killed), or the lab says why it may pass
    (`survives: {MUTANT: reason}` in the lab file). Every instance is removed
    afterwards, also on Ctrl-C. A lab of your own is found through
    PORTLAB_LABS_PATH (`portlab list` shows it).

    \b
    Example:
      PORTLAB_LABS_PATH=~/my-labs portlab test my-lab

    \b
    With --json: the lab's result as one object; for several labs (or --all),
    {"ok": true|false, "labs": [one such object per lab]}.

    \b
    Exit codes: 0 every case as declared and every mutant killed (or declared
    to survive), 1 a mismatch or a surviving mutant, 2 the lab file is invalid
    or the case unknown, 3 a case could not run or be judged.
    """
    from portlab.views import labtest as view

    if every == bool(labs):
        raise UsageError("name the lab(s) to test, or --all for every lab (not both)",
                         hint="`portlab list` shows the labs")
    if only and len(labs) != 1:
        raise UsageError("--case goes with one LAB (case names are a lab's own)")
    found = core().test_labs(list(labs), jobs=jobs, only=only, progress=progress(),
                             mutants=not no_mutants)
    if json_out:
        data = (view.as_json(found[0]) if len(labs) == 1 else
                {"ok": all(t.ok for t in found), "labs": [view.as_json(t) for t in found]})
        click.echo(json.dumps(data, indent=2))
    else:
        say("\n\n".join(view.table(t, color=color()) for t in found))
    if all(t.ok for t in found):
        sys.exit(int(ExitCode.OK))
    if any(r.problem or r.errors for t in found for r in t.results):
        sys.exit(int(ExitCode.RUNTIME))
    sys.exit(int(ExitCode.CHECKS_FAILED))
