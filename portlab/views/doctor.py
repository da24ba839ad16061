"""`portlab doctor`'s report for people, and the one line an error of `up` or `grade` ends with."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import click

from portlab.backend.base import Finding, Status
from portlab.doctor.findings import Report

MARKS = {Status.OK: ("OK", "green"), Status.WARN: ("WARN", "yellow"),
         Status.FAIL: ("FAIL", "red")}
WIDTH = 100
ID_WIDTH = 18


def _wrap(first: str, text: str, indent: int) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=first, subsequent_indent=" " * indent,
                         break_on_hyphens=False, break_long_words=False)


def terminal(report: Report, *, color: bool | None = None) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    lines = [f"portlab doctor: {len(report.findings)} checks of this machine"]
    indent = 2 + 5 + 1 + ID_WIDTH + 1
    for f in report.findings:
        word, fg = MARKS[f.status]
        head = f"  {word:<5} {f.id:<{ID_WIDTH}} "
        text = _wrap(head, f.what, indent)
        lines.append(style(word, fg=fg, bold=True).join(text.split(word, 1)) if color else text)
        if f.fix and f.status is not Status.OK:
            lines.append(style(_wrap(" " * indent + "fix: ", f.fix, indent + 5), fg="cyan"))
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: Report) -> str:
    counts = {s: sum(1 for f in report.findings if f.status is s) for s in Status}
    said = (f"{counts[Status.OK]} ok, {counts[Status.WARN]} "
            f"warning{'s' if counts[Status.WARN] != 1 else ''}, {counts[Status.FAIL]} "
            f"failure{'s' if counts[Status.FAIL] != 1 else ''}")
    if report.status is Status.FAIL:
        verdict = "labs cannot run until the failures are fixed"
    elif report.status is Status.WARN:
        verdict = "labs run; see the warnings"
    else:
        verdict = "all is well"
    return f"{said}: {verdict} (exit {report.exit_code})"


def as_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2)


def error_lines(findings: list[Finding]) -> str:
    """What an error of `up` or `grade` ends with: the doctor's findings that relate."""
    return "\n".join(f"portlab doctor: {f.status.value.upper()} {f.id} — "
                     f"{_first_clause(f.what)}; run `portlab doctor` for the fix"
                     for f in findings)


def _first_clause(what: str) -> str:
    return what.split(": ", 1)[0] if len(what) > 90 else what
