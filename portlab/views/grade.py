"""A grade for people (a table with feedback) and for CI systems: JSON (docs/grade-json.md),
JUnit XML, GitHub Classroom's reporter payload, Gradescope's results.json, a class's CSV."""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import click

from portlab.errors import untrusted
from portlab.grading.result import CheckGrade, Grade, Status
from portlab.probes.base import Outcome
from portlab.views.report import MARKS, _wrap

JSON_FORMAT = 1
WORDS = {Status.PASSED: "passed", Status.FAILED: "not passed",
         Status.ERROR: "could not be graded"}


def variant_line(grade: Grade) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(grade.variant.params.items()))
    nets = ", ".join(f"{k} {v}" for k, v in grade.variant.subnets.items())
    return "; ".join(part for part in (params, nets) if part)


def terminal(grade: Grade, *, color: bool | None = None) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    lines = [f"Grading lab '{grade.lab}' for student {grade.student}",
             f"  variant: {variant_line(grade)}"]
    for f in grade.files:
        if f.command:
            code = "stopped at its time limit" if f.timed_out else f"exit {f.exit_code}"
            lines.append(f"  {f.file} on {f.node}: `{untrusted(f.command)}`, {code}, "
                         f"{f.seconds:.1f}s")
        else:
            lines.append(f"  {f.file} on {f.node}: placed")
        if f.exit_code not in (0, None) and f.output.strip():
            tail = "\n".join(f.output.strip().splitlines()[-5:])
            lines.append(_wrap("        said: ", tail))
    width = max([len(c.id) for c in grade.checks] + [5])
    for c in grade.checks:
        word, fg = MARKS[c.outcome] if c.outcome is not None else ("-", "white")
        mark = style(word, fg=fg, bold=True) + " " * (5 - len(word))
        lines.append(f"  {mark} {c.id:<{width}}  {c.points:>2}/{c.max_points:<2}  {c.title}")
        if c.outcome is Outcome.PASS:
            if not c.credited and c.message:  # held, as on the untouched lab: no points
                lines.append(_wrap("        ", c.message))
            continue
        if c.outcome is None:
            lines.append(_wrap("        ", c.message))
            continue
        for p in c.probes:
            if p.passed:
                continue
            lines += [f"        sent:  {untrusted(p.sent)}",
                      f"        from:  {untrusted(p.source)}",
                      f"        to:    {untrusted(p.target)}"]
            if p.errored:
                lines.append(_wrap("        could not observe: ", p.why))
                if p.fix:
                    lines.append(_wrap("        what to do: ", p.fix))
            else:
                lines.append(_wrap("        got:   ", p.got))
                if p.why:
                    lines.append(_wrap("        so:    ", p.why))
        if c.hint:
            lines.append(style(_wrap("        hint:  ", c.hint), fg="yellow"))
    summary = (f"Score: {grade.score}/{grade.max_score} (pass mark {grade.pass_mark}): "
               f"{WORDS[grade.status]}.")
    if grade.status is Status.ERROR:
        summary = f"No score: {untrusted(grade.message)}. This says nothing about the submission."
    elif grade.message:
        summary += f" {untrusted(grade.message)}."
    lines.append(style(summary, bold=True))
    return "\n".join(lines)


def _check(c: CheckGrade) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "status": c.outcome.value if c.outcome is not None else "not-run",
        "points": c.points,
        "max_points": c.max_points,
        "message": c.message,
        "hint": c.hint,
        "probes": [{"passed": p.passed, "sent": p.sent, "from": p.source, "to": p.target,
                    "got": p.got, "why": p.why} for p in c.probes],
    }


def as_dict(grade: Grade) -> dict[str, Any]:
    """The documented JSON of a grade (docs/grade-json.md)."""
    return {
        "format": JSON_FORMAT,
        "lab": grade.lab,
        "student": grade.student,
        "variant": {"params": grade.variant.params,
                    "subnets": {k: str(v) for k, v in grade.variant.subnets.items()}},
        "status": grade.status.value,
        "passed": grade.passed,
        "score": grade.score if grade.status is not Status.ERROR else None,
        "max_score": grade.max_score,
        "pass_mark": grade.pass_mark,
        "message": grade.message,
        "seconds": round(grade.seconds, 3),
        "files": [{"file": f.file, "node": f.node, "command": f.command,
                   "exit_code": f.exit_code, "timed_out": f.timed_out,
                   "seconds": round(f.seconds, 3), "output": f.output} for f in grade.files],
        "checks": [_check(c) for c in grade.checks],
    }


def as_json(grade: Grade) -> str:
    return json.dumps(as_dict(grade), indent=2)


def junit(grade: Grade) -> str:
    """One testcase per check, classname the lab; failures and errors with the feedback."""
    errors = sum(1 for c in grade.checks if c.outcome is Outcome.ERROR)
    failures = sum(1 for c in grade.checks if not c.credited) - errors
    suite = ET.Element("testsuite", name=f"{grade.lab} ({grade.student})",
                       tests=str(len(grade.checks)), failures=str(failures),
                       errors=str(errors), time=f"{grade.seconds:.3f}")
    for c in grade.checks:
        case = ET.SubElement(suite, "testcase", classname=grade.lab, name=c.id,
                             time="0.000")
        if c.credited:
            continue
        body = "\n".join(f"sent: {p.sent}\nfrom: {p.source}\nto: {p.target}\n"
                         f"got: {p.got}\nso: {p.why}" for p in c.probes if not p.passed)
        body = "\n".join(part for part in (f"points: {c.points}/{c.max_points}", body,
                                           f"hint: {c.hint}" if c.hint else "") if part)
        tag = "error" if c.outcome is Outcome.ERROR else "failure"
        node = ET.SubElement(case, tag, message=untrusted(c.message or c.title),
                             type="could-not-observe" if tag == "error" else "check-failed")
        node.text = untrusted(body)
    out = ET.Element("testsuites", name=f"portlab grade {grade.lab}",
                     tests=str(len(grade.checks)), failures=str(failures),
                     errors=str(errors), time=f"{grade.seconds:.3f}")
    out.append(suite)
    return ET.tostring(out, encoding="unicode", xml_declaration=True)


def runner_id(check_id: str, taken: set[str] | None = None) -> str:
    """The reporter's runner for a check: letters and digits only (the reporter's own error
    message hides the real one for any other id), unique among `taken`."""
    base = "".join(ch for ch in check_id.lower() if ch.isascii() and ch.isalnum())[:20]
    base = base or "check"
    if base[0].isdigit():  # `steps.X.outputs.6to4` is no expression GitHub accepts
        base = f"c{base}"[:20]
    rid, n = base, 2
    while taken is not None and rid in taken:
        rid, n = f"{base}{n}", n + 1
    if taken is not None:
        taken.add(rid)
    return rid


def runner_ids(check_ids: list[str]) -> dict[str, str]:
    """Each check's runner, in the lab's order."""
    taken: set[str] = set()
    return {cid: runner_id(cid, taken) for cid in check_ids}


def _runner(name: str, status: str, score: int, max_score: int, message: str,
            lab: str) -> dict[str, Any]:
    return {"version": 1, "status": status, "max_score": max_score,
            "tests": [{"name": untrusted(name), "status": status, "score": score,
                       "message": untrusted(message)[:2000],
                       "test_code": f"portlab grade {lab}", "filename": "", "line_no": 0,
                       "duration": 0}]}


def classroom(grade: Grade, every: list[tuple[str, str, int]] | None = None
              ) -> dict[str, dict[str, Any]]:
    """What GitHub Classroom's autograding-grading-reporter reads, a runner per check (runner
    id -> its decoded `result`). The reporter posts the sum of the tests' scores out of the
    sum of the runners' max_score, and its log shows passed tests / tests x max_score per
    runner: with one check per runner, both say the same. A check passes only when it earned
    its points. A grade that could not run gives every runner max_score 0 and status
    "error": Classroom then records no points, and the job fails as errored."""
    ids = runner_ids([c.id for c in grade.checks])
    out = {}
    for c in grade.checks:
        name = f"{c.id}: {c.title}"
        if grade.status is Status.ERROR:
            why = c.message if c.outcome is Outcome.ERROR else grade.message
            out[ids[c.id]] = _runner(name, "error", 0, 0, why or grade.message, grade.lab)
            continue
        status = "pass" if c.credited else "fail"
        message = c.message or (grade.message if status == "fail" else "") or \
            ("passed" if status == "pass" else c.title)
        out[ids[c.id]] = _runner(name, status, c.points, c.max_points, message, grade.lab)
    if every is not None:  # a check the grade does not name still gets its runner
        missing = [c for c in every if c[0] not in {g.id for g in grade.checks}]
        unjudged = classroom_unjudged(grade.lab, every, grade.message or "not judged",
                                      usable=True)
        ids_all = runner_ids([c[0] for c in every])
        for cid, _, _ in missing:
            out[ids_all[cid]] = unjudged[ids_all[cid]]
    return out


def classroom_unjudged(lab: str, checks: list[tuple[str, str, int]], reason: str, *,
                       usable: bool) -> dict[str, dict[str, Any]]:
    """The runners when there is no grade: an unusable submission (`usable` False) fails
    every check with the reason; anything else is an error that counts nothing."""
    ids = runner_ids([cid for cid, _, _ in checks])
    out = {}
    for cid, title, points in checks:
        out[ids[cid]] = (_runner(f"{cid}: {title}", "fail", 0, points, reason, lab) if not usable
                         else _runner(f"{cid}: {title}", "error", 0, 0, reason, lab))
    return out


def classroom_lines(runners: dict[str, dict[str, Any]]) -> list[str]:
    """The `$GITHUB_OUTPUT` lines: `RUNNER=base64 of its JSON`, one per runner."""
    return [f"{rid}={base64.b64encode(json.dumps(r, separators=(',', ':')).encode()).decode()}"
            for rid, r in runners.items()]


MARKDOWN_SPECIAL = "\\`*_[]<>!|#~"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, every character Markdown would act on
    escaped (a node's words never become a link, an image or HTML on the summary page)."""
    flat = untrusted(text).replace("\n", " ")[:300]
    return "".join(f"\\{ch}" if ch in MARKDOWN_SPECIAL else ch for ch in flat)


def markdown(grade: Grade) -> str:
    """The grade as Markdown, for a CI run's summary page ($GITHUB_STEP_SUMMARY)."""
    head = (f"No score: {grade.message}" if grade.status is Status.ERROR else
            f"Score {grade.score}/{grade.max_score} (pass mark {grade.pass_mark}): "
            f"{WORDS[grade.status]}")
    lines = [f"### portlab: lab {grade.lab}, student {grade.student}", "",
             _cell(head), "", "| check | points | result | what came back |",
             "| --- | --- | --- | --- |"]
    for c in grade.checks:
        result = "passed" if c.credited else ("could not observe" if c.outcome is Outcome.ERROR
                                              else "failed")
        lines.append(f"| {_cell(c.id)}: {_cell(c.title)} | {c.points}/{c.max_points} | "
                     f"{result} | {_cell(c.message) if not c.credited else ''} |")
    return "\n".join(lines) + "\n"


def gradescope(grade: Grade) -> dict[str, Any]:
    """Gradescope's results.json (its autograder specification)."""
    tests = [{"name": f"{c.id}: {c.title}", "score": c.points, "max_score": c.max_points,
              "status": "passed" if c.credited else "failed",
              "output": c.message if not c.credited else "",
              "visibility": "visible"} for c in grade.checks]
    summary = f"Score {grade.score}/{grade.max_score} (pass mark {grade.pass_mark})"
    if grade.message:
        summary += f": {grade.message}"
    return {"score": grade.score, "execution_time": round(grade.seconds),
            "output": summary, "visibility": "visible", "tests": tests}


def csv_text(grades: list[tuple[str, Grade | None, str]], check_ids: list[str]) -> str:
    """A class's grades: student, score, max, passed, status, message, per-check points."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "score", "max_score", "passed", "status", "message",
                     *check_ids])
    for student, grade, problem in grades:
        if grade is None:
            writer.writerow([student, "", "", False, "unusable", problem, *[""] * len(check_ids)])
            continue
        points = {c.id: c.points for c in grade.checks}
        score = grade.score if grade.status is not Status.ERROR else ""
        writer.writerow([student, score, grade.max_score, grade.passed, grade.status.value,
                         grade.message, *[points.get(cid, "") for cid in check_ids]])
    return out.getvalue()


def class_table(batch: Any) -> str:
    """A class's grades, a line each, and how long the whole batch took."""
    lines = [f"Graded {len(batch.entries)} submissions to lab '{batch.lab}' in "
             f"{batch.seconds:.1f}s:"]
    width = max([len(e.student) for e in batch.entries] + [7])
    for e in batch.entries:
        if e.grade is None:
            lines.append(f"  {e.student:<{width}}  not graded: {e.problem}")
            continue
        g = e.grade
        if g.status is Status.ERROR:
            lines.append(f"  {e.student:<{width}}  could not be graded: {g.message}")
            continue
        extra = f" ({g.message})" if g.message else ""
        lines.append(f"  {e.student:<{width}}  {g.score:>3}/{g.max_score:<3} "
                     f"{WORDS[g.status]}{extra}")
    passed = sum(1 for e in batch.entries if e.grade is not None and e.grade.passed)
    lines.append(f"{passed} of {len(batch.entries)} passed.")
    return "".join(line + "\n" for line in lines)
