"""One sanitizer for what a node sends (errors.untrusted): a submission's output, a server's
answer, a trace line. On a terminal its escapes are shown, never interpreted: no cursor moves,
colours, hidden text or window titles, and no fake "PASS 10/10" drawn over the real verdict.
JSON carries them escaped, JUnit too, and a page escapes them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import click
from hypothesis import given
from hypothesis import strategies as st

from portlab.errors import untrusted
from portlab.grading.result import CheckGrade, FileRun, Grade, Status
from portlab.model.variant import Variant
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import CheckResult, Report
from portlab.trace.events import Flow, Packet
from portlab.views import grade as grade_view
from portlab.views import report as report_view
from portlab.views import trace as trace_view

FORGED = ("\x1b[2J\x1b[H\x1b[32mPASS  everything  10/10\x1b[0m\x1b]0;owned\x07\x1b[8mhidden"
          "\x1b[8m\r\u202edesrever\x00\x9b31m")
CONTROL = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"] + ["\x7f", "\x9b", "\u202e"]


def visible(text: str) -> None:
    assert not any(ch in text for ch in CONTROL), repr(text)


@given(st.text())
def test_untrusted_keeps_lines_and_tabs_and_shows_every_other_control(text: str) -> None:
    out = untrusted(text)
    visible(out)
    assert out.count("\n") == text.count("\n") and out.count("\t") == text.count("\t")


def test_forged_escapes_are_shown_not_interpreted() -> None:
    out = untrusted(FORGED)
    assert out.startswith("\\x1b[2J\\x1b[H\\x1b[32mPASS")
    assert "\\x07" in out and "\\r" in out and "\\u202e" in out and "\\x00" in out


def grade_of(output: str) -> Grade:
    probe = ProbeResult(Outcome.FAIL, f"sent {FORGED}", "friend (198.51.100.10)",
                        "router.wan = 198.51.100.1:25565", f"an answer: {FORGED}",
                        f"because {FORGED}")
    return Grade("forwarding", "mallory", Variant("mallory"), Status.FAILED, 0, 10,
                 8, files=[FileRun("router.sh", "router", f"sh router.sh {FORGED}", 1, output,
                                   0.1)],
                 checks=[CheckGrade("reach", "reach", Outcome.FAIL, 0, 4, [probe],
                                    message=f"got {FORGED}")],
                 message=FORGED)


def test_a_grade_shows_a_submissions_escapes_as_text_everywhere() -> None:
    grade = grade_of(f"ok\n{FORGED}\n")
    visible(grade_view.terminal(grade, color=False))
    styled = grade_view.terminal(grade, color=True)
    visible(click.unstyle(styled))  # portlab's own colours are the only escapes in it
    assert "\\x1b[2J" in styled and "\x1b[2J" not in styled
    data = json.loads(grade_view.as_json(grade))
    assert data["files"][0]["output"].endswith(f"{FORGED}\n")  # JSON escapes it itself
    junit = grade_view.junit(grade)
    ET.fromstring(junit.split("?>", 1)[1])  # a valid XML document: no raw control character
    assert "\\x1b[2J" in junit and "\x1b" not in junit


def test_a_check_report_and_a_trace_line_show_escapes_as_text() -> None:
    probe = ProbeResult(Outcome.FAIL, "HTTP GET /", "friend (198.51.100.10)", "router.wan",
                        f"an answer: {FORGED}", f"because {FORGED}")
    report = Report("forwarding", "forwarding", [CheckResult("reach", "reach", None,
                                                             Outcome.FAIL, [probe], "", 0.1)])
    visible(report_view.terminal(report, color=False))
    packet = Packet(0.0, "router", "wan", "in", "tcp",
                    Flow(f"198.51.100.10{FORGED}", "198.51.100.1", 1, 2), "S", 0,
                    f"opens a connection {FORGED}")
    visible(trace_view.line(packet, label=True, width=6))
