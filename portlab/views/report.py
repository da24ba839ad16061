"""Check results for people (terminal), machines (JSON) and CI systems (JUnit XML).

Errors (portlab could not observe) are shown apart from failures (the
network is not right yet), with the reason and what to do, in every form.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from typing import Any

import click

from portlab.errors import untrusted
from portlab.probes.base import Outcome
from portlab.probes.runner import CheckResult, Report

JSON_FORMAT = 1
MARKS = {Outcome.PASS: ("PASS", "green"), Outcome.FAIL: ("FAIL", "red"),
         Outcome.ERROR: ("ERROR", "magenta")}


def terminal(report: Report, *, color: bool | None = None, verbose: bool = False) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    total = len(report.results)
    lines = [f"Checking lab '{report.lab}' (instance {report.instance}): {total} checks"]
    for r in report.results:
        word, fg = MARKS[r.outcome]
        lines.append(f"  {style(word, fg=fg, bold=True)}{' ' * (5 - len(word))} {r.id:<22} "
                     f"{r.title}")
        if r.passed and not verbose:
            # a line of what each probe saw: a pass teaches too ("filtered", "saw 198.51.100.10")
            for p in r.probes:
                if p.got:
                    lines.append(style(_wrap("        seen:  ", p.got), dim=True))
            continue
        for p in r.probes:
            if p.passed and not verbose:
                continue
            lines.append(f"        sent:  {untrusted(p.sent)}")
            lines.append(f"        from:  {untrusted(p.source)}")
            lines.append(f"        to:    {untrusted(p.target)}")
            if p.errored:
                lines.append(style(_wrap("        could not observe: ", p.why), fg="magenta"))
                if p.fix:
                    lines.append(_wrap("        what to do: ", p.fix))
                continue
            lines.append(_wrap("        got:   ", p.got))
            if p.why:
                lines.append(_wrap("        so:    ", p.why))
        if r.hint:
            lines.append(style(_wrap("        hint:  ", r.hint), fg="yellow"))
    passed = sum(1 for r in report.results if r.passed)
    failed = len(report.failed_ids())
    errored = report.errored_ids()
    summary = f"{passed} of {total} checks passed"
    if errored:
        summary += f", {failed} failed, {len(errored)} could not be judged (error)"
    summary += f" in {report.seconds:.1f}s."
    if report.passed:
        summary += " Well done: the lab is solved (`portlab next` suggests the next one)."
    lines.append(style(summary, bold=True))
    if errored:
        lines.append(style(_wrap("", f"portlab could not observe {', '.join(errored)}: those "
                                 "checks say nothing about your work yet. Do what each says "
                                 "under 'what to do', then run `portlab check` again."),
                           fg="magenta"))
    return "\n".join(lines)


def _wrap(prefix: str, text: str) -> str:
    """Fill `text` after `prefix`; single line breaks are reflowed, blank lines kept. The text
    may hold what a node sent: it is made safe first (errors.untrusted)."""
    out = []
    text = untrusted(text)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())] or [""]
    for i, para in enumerate(paras):
        out.append(textwrap.fill(para, width=100, initial_indent=prefix if i == 0 else " " *
                                 len(prefix), subsequent_indent=" " * len(prefix)))
    return "\n".join(out)


def _error(r: CheckResult) -> tuple[str, str]:
    """(why the check could not be judged, what to do), from its errored probe."""
    probe = next((p for p in r.probes if p.errored), None)
    return (probe.why, probe.fix) if probe is not None else ("", "")


def as_dict(report: Report) -> dict[str, Any]:
    """The documented JSON form of a check run (docs/check-json.md)."""
    checks = []
    for r in report.results:
        reason, fix = _error(r)
        checks.append({
            "id": r.id,
            "title": r.title,
            "task": r.task,
            "status": r.outcome.value,
            "passed": r.passed,
            "error": reason if r.errored else None,
            "hint": fix if r.errored else r.hint,
            "seconds": round(r.seconds, 3),
            "probes": [
                {"passed": p.passed, "sent": p.sent, "from": p.source, "to": p.target,
                 "got": p.got, "why": p.why, "data": p.data}
                for p in r.probes
            ],
        })
    return {
        "format": JSON_FORMAT,
        "lab": report.lab,
        "instance": report.instance,
        "status": report.outcome.value,
        "passed": report.passed,
        "seconds": round(report.seconds, 3),
        "checks": checks,
    }


def as_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2)


def junit(report: Report) -> str:
    """JUnit XML: one testcase per check; a failure is <failure>, an error <error>."""
    failures = len(report.failed_ids())
    errors = len(report.errored_ids())
    suite = ET.Element("testsuite", name=f"portlab.{report.lab}", tests=str(len(report.results)),
                       failures=str(failures), errors=str(errors), time=f"{report.seconds:.3f}")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"portlab.{report.lab}", name=r.id,
                             time=f"{r.seconds:.3f}")
        if r.passed:
            continue
        shown = [p for p in r.probes if not p.passed]
        body = "\n".join(f"sent: {p.sent}\nfrom: {p.source}\nto: {p.target}\n"
                         + (f"could not observe: {p.why}\nwhat to do: {p.fix}" if p.errored
                            else f"got: {p.got}\nso: {p.why}")
                         for p in shown)
        if r.errored:
            reason, _ = _error(r)
            node = ET.SubElement(case, "error", message=reason or "could not observe",
                                 type="could-not-observe")
        else:
            if r.hint:
                body += f"\nhint: {r.hint}"
            message = shown[0].why if shown else "failed"
            node = ET.SubElement(case, "failure", message=message or "failed")
        node.text = body
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
