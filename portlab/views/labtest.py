"""`portlab test LAB` as a table: each case, what it declares, what happened."""

from __future__ import annotations

from typing import Any

import click

from portlab.labtest import MUTANT, CaseResult, LabTest

GOOD = ("as declared", "killed", "survived (declared)", "does not apply")


def _ids(ids: list[str] | tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "(none)"


def verdict(r: CaseResult) -> str:
    if r.problem:
        return "COULD NOT RUN"
    if r.errors:
        return "NOT JUDGED"
    if r.not_applicable:
        return "does not apply"
    if r.case.mutant is not None:
        return "killed" if r.killed else ("survived (declared)" if r.case.survives
                                          else "SURVIVED")
    return "as declared" if r.ok else "MISMATCH"


def _rows(rows: list[tuple[str, ...]], color: bool | None) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for k, row in enumerate(rows):
        text = "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        mark = row[-1]
        if k and color is not False:
            mark = click.style(mark, fg="green" if mark in GOOD else "red", bold=True)
        out.append(f"{text}  {mark}")
    return out


def table(result: LabTest, color: bool | None = None) -> str:
    declared = [r for r in result.results if r.case.mutant is None]
    mutants = [r for r in result.results if r.case.mutant is not None]
    out = [f"Lab '{result.lab}': {len(result.results)} cases, each on a fresh instance, "
           f"{result.jobs} at a time, by real traffic"]
    if declared:
        rows: list[tuple[str, ...]] = [("case", "declared to fail", "failed", "result")]
        rows += [(r.case.name, _ids(r.case.expected), _ids(r.failed) if not r.problem else "-",
                  verdict(r)) for r in declared]
        out += _rows(rows, color)
    if mutants:
        out += ["", "Mutants: the solution plus one mistake each; a check must fail (killed)"]
        rows = [("mutant", "failed", "result")]
        rows += [(r.case.name[len(MUTANT):], _ids(r.failed) if not r.problem else "-",
                  verdict(r)) for r in mutants]
        out += _rows(rows, color)
        for r in mutants:
            if r.not_applicable:
                out.append(f"  {r.case.name[len(MUTANT):]} does not apply: {r.not_applicable}")
            elif r.case.survives and not r.killed and not r.problem and not r.errors:
                out.append(f"  {r.case.name[len(MUTANT):]} survives, as the lab says: "
                           f"{r.case.survives}")
    for name in result.unknown_survivors:
        out += ["", f"survives: {name}: no mutant of this lab has that name (`portlab test "
                    f"{result.lab} --json` lists them)"]
    for r in result.mismatches():
        out.append("")
        out.append(f"{r.case.name}:")
        if r.problem:
            out.append(f"  could not run: {r.problem}")
            continue
        if r.case.mutant is not None and not r.errors:
            out.append(f"  {r.case.mutant.description}: every check passed. Add a check that "
                       "catches it, or say why it may pass (`survives:` in the lab file)")
            continue
        if r.errors:
            out.append(f"  could not be judged (a probe could not observe): {_ids(r.errors)}; "
                       "`portlab check` on an instance says why")
        if r.unexpected():
            out.append(f"  failed, but not declared: {_ids(r.unexpected())}")
        if r.missing():
            out.append(f"  declared to fail, but passed: {_ids(r.missing())}")
        for unsaid in r.unsaid:
            out.append(f"  its feedback does not say what the lab declares ({unsaid}): the hint "
                       "for what was seen does not name this mistake")
    for r in result.results:
        if r.ignored:
            out.append(f"note: {r.case.name} also fails the stretch check(s) "
                       f"{_ids(r.ignored)}, which a wrong solution need not name")
    ok = sum(r.ok for r in declared)
    out.append("")
    killed = sum(r.ok for r in mutants)
    summary = f"{ok} of {len(declared)} cases as declared"
    if mutants:
        summary += f", {killed} of {len(mutants)} mutants killed or declared to survive"
    out.append(f"{summary}, in {result.seconds:.0f} s." +
               ("" if result.ok else " The lab does not do what it declares: fix the lab "
                "file (or its solution), then test again."))
    return "\n".join(out)


def as_json(result: LabTest) -> dict[str, Any]:
    return {
        "lab": result.lab, "ok": result.ok, "seconds": round(result.seconds, 1),
        "jobs": result.jobs,
        "cases": [{"case": r.case.name, "ok": r.ok, "declared": list(r.case.expected),
                   "failed": r.failed, "errors": r.errors, "ignored_stretch": r.ignored,
                   "problem": r.problem or None, "unsaid": r.unsaid,
                   "seconds": round(r.seconds, 1)}
                  for r in result.results if r.case.mutant is None],
        "mutants": [{"mutant": r.case.name[len(MUTANT):], "ok": r.ok,
                     "description": r.case.mutant.description, "killed": r.killed,
                     "failed": r.failed, "errors": r.errors, "survives": r.case.survives or None,
                     "not_applicable": r.not_applicable or None,
                     "problem": r.problem or None, "seconds": round(r.seconds, 1)}
                    for r in result.results if r.case.mutant is not None],
        "unknown_survivors": result.unknown_survivors,
    }
