"""Check results for people (terminal), machines (JSON) and CI systems (JUnit XML).

Errors (portlab could not observe) are shown apart from failures (the
network is not right yet), with the reason and what to do, in every form.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import click

from portlab.errors import untrusted
from portlab.probes import rules
from portlab.probes.base import Outcome
from portlab.probes.rules import Explanation
from portlab.probes.runner import CheckResult, Report

JSON_FORMAT = 1
MARKS = {Outcome.PASS: ("PASS", "green"), Outcome.FAIL: ("FAIL", "red"),
         Outcome.ERROR: ("ERROR", "magenta")}


def terminal(report: Report, *, color: bool | None = None, verbose: bool = False) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    total = len(report.results)
    lines = [f"Checking lab '{report.lab}' (instance {report.instance}): {total} checks"]
    told: dict[tuple[str, str, str, str], str] = {}  # a failing probe's words -> its check
    for r in report.results:
        word, fg = MARKS[r.outcome]
        lines.append(f"  {style(word, fg=fg, bold=True)}{' ' * (5 - len(word))} {r.id:<22} "
                     f"{r.title}")
        same = r.probes[-1].words() if r.probes and r.failed else None
        if same is not None and same in told and not verbose:
            lines.append(_wrap("        got:   ", f"the same as `{told[same]}` above: this "
                               "check builds on it, so put that right first"))
            continue
        if same is not None:
            told[same] = r.id
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
        if r.explanation is not None:
            lines.extend(rules_lines(r.explanation))
        if r.hint:
            lines.append(style(_wrap("        hint:  ", r.hint), fg="yellow"))
        if r.commands:
            lines.append(style(_commands("        try:   ", r.commands), fg="yellow"))
        elif r.commands_in:
            more = "one more try" if r.commands_in == 1 else f"{r.commands_in} more tries"
            lines.append(style(_wrap("        more:  ", f"the commands that solve it come after "
                                     f"{more}, or now with `portlab check --reveal`"),
                               dim=True))
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
    """`text` after `prefix`, a line per paragraph (single line breaks are joined, blank lines
    kept): on a terminal, screen.fit wraps it to the terminal's width, hanging under the text;
    into a pipe or a file, it stays one line. The text may hold what a node sent: it is made
    safe first (errors.untrusted)."""
    text = untrusted(text)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())] or [""]
    return "\n".join((prefix if i == 0 else " " * len(prefix)) + para
                     for i, para in enumerate(paras))


def _commands(prefix: str, text: str) -> str:
    """Commands, a line each as written (never reflowed: they are copied), after `prefix`."""
    rows = [untrusted(line.rstrip()) for line in text.strip().splitlines()]
    return "\n".join((prefix if i == 0 else " " * len(prefix)) + row for i, row in enumerate(rows))


def rules_lines(found: Explanation) -> list[str]:
    """The learner's rules beside a failed check: each chain in order with its counters, the
    rules this probe's packets matched marked, and how to delete one."""
    pad = "        "
    if found.problem:
        return [_wrap(f"{pad}rules: ", f"could not be read ({found.problem})")]
    if not found.chains:
        return []
    lines = [_wrap(f"{pad}rules: ", f"yours on {found.node}, in order: a packet takes the "
                   "first rule that decides (the probe was sent once more, and ← marks the "
                   "rules its packets matched)")]
    took = []
    for chain in found.chains:
        policy = f"policy {chain.policy}" if chain.policy != "-" else "a chain of your own"
        if chain.policy_matched:
            policy += f" ← {_packets(chain.policy_matched)} fell through to it"
        lines.append(f"{pad}  {chain.table} {untrusted(chain.name)} ({policy}):")
        if not chain.rules:
            lines.append(f"{pad}    (no rules)")
        for rule in chain.rules:
            mark = f"  ← {_packets(rule.matched)}" if rule.matched else ""
            lines.append(f"{pad}    {rule.number:>2}  `{untrusted(rule.text)}`  "
                         f"[{rule.packets} before]{mark}")
            if rule.matched:
                took.append((chain, rule))
        if chain.more:
            lines.append(f"{pad}    ... and {chain.more} more")
    if took:
        chain, rule = took[0]
        lines.append(_wrap(f"{pad}so:    ", f"the probe's packets matched rule {rule.number} of "
                           f"{chain.table} {chain.name} first. If that rule is the mistake, "
                           f"`{rules.tool(chain.table)} -t {chain.table.split()[-1]} -D "
                           f"{chain.name} {rule.number}` "
                           "deletes it; a rule added with -A comes after it, -I puts one "
                           "first."))
    else:
        lines.append(_wrap(f"{pad}so:    ", "none of these rules matched the probe's "
                           "packets: each chain's policy decided"))
    return lines


def _packets(n: int) -> str:
    return f"{n} packet" + ("s" if n != 1 else "")


def _explained(found: Explanation | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"node": found.node, "problem": found.problem or None,
            "chains": [{"table": c.table, "chain": c.name, "policy": c.policy,
                        "policy_matched": c.policy_matched, "more": c.more,
                        "rules": [{"number": r.number, "rule": r.text, "packets": r.packets,
                                   "matched": r.matched} for r in c.rules]}
                       for c in found.chains]}


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
            "seen": r.seen or None,
            "tries": r.tries,
            "commands": r.commands or None,
            "commands_in": r.commands_in,
            "rules": _explained(r.explanation),
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
            if r.commands:
                body += f"\ntry:\n{r.commands}"
            message = shown[0].why if shown else "failed"
            node = ET.SubElement(case, "failure", message=message or "failed")
        node.text = body
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
