"""`portlab test LAB` as a table: each case, what it declares, what happened."""

from __future__ import annotations

from typing import Any

import click

from portlab.labtest import CaseResult, LabTest


def _ids(ids: list[str] | tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "(none)"


def verdict(r: CaseResult) -> str:
    if r.problem:
        return "COULD NOT RUN"
    if r.errors:
        return "NOT JUDGED"
    return "as declared" if r.ok else "MISMATCH"


def table(result: LabTest, color: bool | None = None) -> str:
    rows = [("case", "declared to fail", "failed", "result")]
    for r in result.results:
        failed = _ids(r.failed) if not r.problem else "-"
        rows.append((r.case.name, _ids(r.case.expected), failed, verdict(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = [f"Lab '{result.lab}': {len(result.results)} cases, each on a fresh instance, "
           f"{result.jobs} at a time, by real traffic"]
    for k, row in enumerate(rows):
        text = "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3]))
        mark = row[3]
        if k and color is not False:
            mark = click.style(mark, fg="green" if mark == "as declared" else "red", bold=True)
        out.append(f"{text}  {mark}")
    for r in result.mismatches():
        out.append("")
        out.append(f"{r.case.name}:")
        if r.problem:
            out.append(f"  could not run: {r.problem}")
            continue
        if r.errors:
            out.append(f"  could not be judged (a probe could not observe): {_ids(r.errors)}; "
                       "`portlab check` on an instance says why")
        if r.unexpected():
            out.append(f"  failed, but not declared: {_ids(r.unexpected())}")
        if r.missing():
            out.append(f"  declared to fail, but passed: {_ids(r.missing())}")
    for r in result.results:
        if r.ignored:
            out.append(f"note: {r.case.name} also fails the stretch check(s) "
                       f"{_ids(r.ignored)}, which a wrong solution need not name")
    ok = sum(r.ok for r in result.results)
    out.append("")
    out.append(f"{ok} of {len(result.results)} cases as declared, in {result.seconds:.0f} s." +
               ("" if result.ok else " The lab does not do what it declares: fix the lab "
                "file (or its solution), then test again."))
    return "\n".join(out)


def as_json(result: LabTest) -> dict[str, Any]:
    return {
        "lab": result.lab, "ok": result.ok, "seconds": round(result.seconds, 1),
        "jobs": result.jobs,
        "cases": [{"case": r.case.name, "ok": r.ok, "declared": list(r.case.expected),
                   "failed": r.failed, "errors": r.errors, "ignored_stretch": r.ignored,
                   "problem": r.problem or None, "seconds": round(r.seconds, 1)}
                  for r in result.results],
    }
