"""Check results for people (terminal), machines (JSON) and CI systems (JUnit XML)."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from typing import Any

import click

from portlab.checks.runner import Report

JSON_FORMAT = 1


def terminal(report: Report, *, color: bool | None = None, verbose: bool = False) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    total = len(report.results)
    lines = [f"Checking lab '{report.lab}' (instance {report.instance}): {total} checks"]
    for r in report.results:
        mark = style("PASS", fg="green", bold=True) if r.passed else style("FAIL", fg="red",
                                                                           bold=True)
        lines.append(f"  {mark}  {r.id:<22} {r.title}")
        if r.passed and not verbose:
            # one line of what was seen: a pass teaches too ("filtered", "saw 198.51.100.10")
            seen = r.probes[-1].got if r.probes else ""
            if seen:
                lines.append(style(_wrap("        seen:  ", seen), dim=True))
            continue
        for p in r.probes:
            if p.passed and not verbose:
                continue
            lines.append(f"        sent:  {p.sent}")
            lines.append(f"        from:  {p.source}")
            lines.append(f"        to:    {p.target}")
            lines.append(_wrap("        got:   ", p.got))
            if p.why:
                lines.append(_wrap("        so:    ", p.why))
        if r.hint:
            lines.append(style(_wrap("        hint:  ", r.hint), fg="yellow"))
    passed = sum(1 for r in report.results if r.passed)
    summary = f"{passed} of {total} checks passed in {report.seconds:.1f}s."
    if report.passed:
        summary += " Well done: the lab is solved."
    lines.append(style(summary, bold=True))
    return "\n".join(lines)


def _wrap(prefix: str, text: str) -> str:
    """Fill `text` after `prefix`; single line breaks are reflowed, blank lines kept."""
    out = []
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())] or [""]
    for i, para in enumerate(paras):
        out.append(textwrap.fill(para, width=100, initial_indent=prefix if i == 0 else " " *
                                 len(prefix), subsequent_indent=" " * len(prefix)))
    return "\n".join(out)


def as_dict(report: Report) -> dict[str, Any]:
    """The documented JSON form of a check run (docs/check-json.md)."""
    return {
        "format": JSON_FORMAT,
        "lab": report.lab,
        "instance": report.instance,
        "passed": report.passed,
        "seconds": round(report.seconds, 3),
        "checks": [
            {
                "id": r.id,
                "title": r.title,
                "task": r.task,
                "passed": r.passed,
                "hint": r.hint,
                "seconds": round(r.seconds, 3),
                "probes": [
                    {"passed": p.passed, "sent": p.sent, "from": p.source, "to": p.target,
                     "got": p.got, "why": p.why, "data": p.data}
                    for p in r.probes
                ],
            }
            for r in report.results
        ],
    }


def as_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2)


def junit(report: Report) -> str:
    failures = sum(1 for r in report.results if not r.passed)
    suite = ET.Element("testsuite", name=f"portlab.{report.lab}", tests=str(len(report.results)),
                       failures=str(failures), errors="0", time=f"{report.seconds:.3f}")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"portlab.{report.lab}", name=r.id,
                             time=f"{r.seconds:.3f}")
        if not r.passed:
            failed = next((p for p in r.probes if not p.passed), None)
            message = failed.why if failed else "failed"
            body = "\n".join(
                f"sent: {p.sent}\nfrom: {p.source}\nto: {p.target}\ngot: {p.got}\nso: {p.why}"
                for p in r.probes if not p.passed)
            if r.hint:
                body += f"\nhint: {r.hint}"
            node = ET.SubElement(case, "failure", message=message or "failed")
            node.text = body
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
