"""Reports: the terminal text says what was sent and what came back; JSON and JUnit parse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import CheckResult, Report
from portlab.views import report


def sample() -> Report:
    bad = ProbeResult(Outcome.FAIL, "Minecraft status ping", "friend (198.51.100.10)",
                      "router.wan = 198.51.100.1:25565",
                      "the connection was refused at once (a scanner would say: closed)",
                      "no Minecraft status answer came back")
    good = ProbeResult(Outcome.PASS, "HTTP GET /", "gamer-pc (10.0.0.10)",
                       "friend.wan = 198.51.100.10:80",
                       "HTTP 200")
    return Report("forwarding", "forwarding", [
        CheckResult("reach", "Friend reaches the server", "forward", Outcome.FAIL, [bad],
                    "Add a DNAT rule.", 0.2),
        CheckResult("lan-internet", "LAN reaches the internet", None, Outcome.PASS, [good], "",
                    0.1),
    ], 0.3)


def test_terminal_report_explains_a_failure() -> None:
    text = report.terminal(sample(), color=False)
    assert "FAIL  reach" in text and "PASS  lan-internet" in text
    assert "sent:  Minecraft status ping" in text
    assert "from:  friend (198.51.100.10)" in text
    assert "to:    router.wan = 198.51.100.1:25565" in text
    assert "got:   the connection was refused" in text
    assert "hint:  Add a DNAT rule." in text
    assert "1 of 2 checks passed" in text
    assert "seen:  HTTP 200" in text  # a passed check says in a line what each probe saw
    verbose = report.terminal(sample(), color=False, verbose=True)
    assert "from:  gamer-pc (10.0.0.10)" in verbose and "from:  gamer-pc" not in text


def test_json_report_is_stable() -> None:
    data = json.loads(report.as_json(sample()))
    assert data["format"] == 1 and data["passed"] is False
    assert [c["id"] for c in data["checks"]] == ["reach", "lan-internet"]
    assert set(data["checks"][0]["probes"][0]) == {"passed", "sent", "from", "to", "got", "why",
                                                   "data"}


def test_junit_report_counts_failures() -> None:
    root = ET.fromstring(report.junit(sample()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='reach']/failure")
    assert failure is not None and "hint: Add a DNAT rule." in (failure.text or "")


def test_a_passed_check_shows_what_each_of_its_probes_saw() -> None:
    inside = ProbeResult(Outcome.PASS, "HTTP GET /", "tv (10.0.0.20)", "gamer-pc.lan = "
                         "10.0.0.10:8080", "HTTP 200: the photo library answered")
    outside = ProbeResult(Outcome.PASS, "TCP connection attempt (SYN)", "friend (198.51.100.10)",
                          "router.wan = 198.51.100.1:8080", "the connection was refused at once")
    two = Report("forwarding", "forwarding", [CheckResult(
        "only-game-port", "Only one port", None, Outcome.PASS, [inside, outside], "", 0.1)], 0.1)
    text = report.terminal(two, color=False)
    assert text.index("seen:  HTTP 200: the photo library") < text.index(
        "seen:  the connection was refused at once")
