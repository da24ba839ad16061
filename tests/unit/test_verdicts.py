"""Pass, fail or error: a probe that could not observe is an error, never a pass.

Every probe kind is run here against nodes that misbehave the ways real ones
do: the tool is missing (exit 127), it crashed or printed garbage, it could
not use the interface it was told to send through (an unknown --device), and
Docker lost its output while the answer it saved was unreadable too. Each
kind gets the expectation that is most tempting to pass by accident:
"nothing comes back" (answers: false, state: not-open, listening: false,
in_clear: false). Every one must come out ERROR, saying why and what to do.
The same through a whole check, the report and its exit code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from portlab.backend.base import ExecResult
from portlab.model.types import Probe
from portlab.probes.base import Outcome, ProbeRun
from portlab.probes.runner import CheckResult, Report, run_probe
from portlab.views import report
from tests.unit.fakes import FakeNodes, nonce_of

Answer = Callable[[str, list[str]], ExecResult]

NOTHING_BACK: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # kind: (options, the expectation a broken probe could pass by accident)
    "tcp": ({}, {"state": "not-open"}),
    "http": ({}, {"answers": False}),
    "minecraft": ({}, {"answers": False}),
    "udp": ({}, {"answers": False}),
    "listening": ({}, {"listening": False}),
    "capture": ({"at": "isp", "iface": "cafe"}, {"answers": False, "in_clear": False}),
    "wireguard": ({"iface": "wg0"}, {"peer": "10.0.0.9"}),
}
TCP_ALSO = [{"state": "filtered"}, {"state": "closed-or-filtered"}, {"state": "closed"}]


def probe_run(kind: str, answer: Answer, options: dict[str, Any],
              expect: dict[str, Any]) -> ProbeRun:
    target = None if kind in ("listening", "wireguard") else "10.0.0.2"
    probe = Probe(kind, "laptop", target, None if kind == "wireguard" else 80, options, expect,
                  "checks[0].probes[0]", ("checks", 0, "probes", 0))
    return ProbeRun(probe, "laptop", "10.0.0.1", target, target or "", {"addr": {},
                                                                        "token": "tok"},
                    FakeNodes(answer))


def always(result: ExecResult) -> Answer:
    return lambda node, argv: result


def missing_tool(node: str, argv: list[str]) -> ExecResult:
    return ExecResult(127, "", f"sh: 1: {argv[0]}: not found")


def garbage(node: str, argv: list[str]) -> ExecResult:
    return ExecResult(0, "Segmentation fault (core dumped)\n\x00\x01", "")


def unknown_state(node: str, argv: list[str]) -> ExecResult:
    return ExecResult(0, json.dumps({"state": "banana", "kind": argv[3:4]}) + "\n", "")


def unknown_device(node: str, argv: list[str]) -> ExecResult:
    """portlab-probe told --device wlan on a node that has no wlan (it was deleted)."""
    answer = {"state": "probe-error", "error": "cannot use interface wlan: No such device",
              "errno": "ENODEV", "device": "wlan"}
    return ExecResult(3, json.dumps(answer) + "\n", "")


def lost(node: str, argv: list[str]) -> ExecResult:
    """Docker returned nothing, and the saved answer cannot be read either."""
    return ExecResult(0, "", "") if argv[0] == "portlab-probe" else ExecResult(1, "", "cat: x")


BROKEN = {"missing tool": missing_tool, "garbage": garbage, "unknown state": unknown_state,
          "unknown device": unknown_device, "lost output": lost}


@pytest.mark.parametrize("kind", sorted(NOTHING_BACK))
@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_broken_probe_is_an_error_never_a_pass(kind: str, how: str) -> None:
    options, expect = NOTHING_BACK[kind]
    if how == "unknown device" and kind in ("tcp", "http", "minecraft", "udp"):
        options = {**options, "device": "wlan"}
    result = run_probe(probe_run(kind, BROKEN[how], options, expect))
    assert result.outcome is Outcome.ERROR, (result.got, result.why)
    assert not result.passed
    assert result.why and result.fix, result
    if how == "unknown device" and "device" in options:
        assert "no interface 'wlan' any more" in result.fix and "ip link" in result.fix


@pytest.mark.parametrize("expect", TCP_ALSO)
def test_tcp_states_that_mean_nothing_came_back_are_never_passed_by_a_crash(
        expect: dict[str, Any]) -> None:
    for answer in BROKEN.values():
        assert run_probe(probe_run("tcp", answer, {}, expect)).outcome is Outcome.ERROR


def test_the_same_probe_working_gives_a_verdict() -> None:
    """The control: a real "filtered" answer is a pass of state: not-open, and "open" a fail."""
    def answering(state: str) -> Answer:
        return always(ExecResult(0, json.dumps({"state": state, "kind": "tcp"}) + "\n", ""))

    assert run_probe(probe_run("tcp", answering("filtered"), {},
                               {"state": "not-open"})).outcome is Outcome.PASS
    assert run_probe(probe_run("tcp", answering("open"), {},
                               {"state": "not-open"})).outcome is Outcome.FAIL


def test_wireguard_without_the_interface_is_a_verdict_but_garbage_is_not() -> None:
    options, expect = NOTHING_BACK["wireguard"]
    no_wg0 = always(ExecResult(1, "1700000000\n",
                               "Unable to access interface: No such device\n"))
    assert run_probe(probe_run("wireguard", no_wg0, options, expect)).outcome is Outcome.FAIL
    odd_dump = always(ExecResult(0, "1700000000\nPRIV\tPUB\t51820\toff\nnot a peer line\n", ""))
    result = run_probe(probe_run("wireguard", odd_dump, options, expect))
    assert result.outcome is Outcome.ERROR and "never prints" in result.why


def test_a_capture_that_lost_packets_cannot_say_nothing_crossed() -> None:
    """tcpdump's own count of packets the kernel dropped: then "not seen" proves nothing."""
    def answer(node: str, argv: list[str]) -> ExecResult:
        cmd = argv[3:5]
        if cmd == ["capture", "start"]:
            data: dict[str, Any] = {"state": "capturing", "id": "c1"}
        elif cmd == ["capture", "stop"]:
            data = {"state": "captured", "packets": [], "tcpdump": {"dropped_by_kernel": 7}}
        else:
            data = {"state": "filtered", "nonce": nonce_of(argv)}
        return ExecResult(0, json.dumps(data) + "\n", "")

    options, expect = NOTHING_BACK["capture"]
    result = run_probe(probe_run("capture", answer, options, expect))
    assert result.outcome is Outcome.ERROR and "dropped 7 packets" in result.why


def errored_report() -> Report:
    failed = run_probe(probe_run("tcp", always(ExecResult(
        0, json.dumps({"state": "open", "kind": "tcp"}) + "\n", "")), {}, {"state": "not-open"}))
    broken = run_probe(probe_run("tcp", missing_tool, {}, {"state": "not-open"}))
    return Report("mini", "mini", [
        CheckResult("closed-port", "the port is closed", None, failed.outcome, [failed],
                    "Drop it.", 0.1),
        CheckResult("dropped-port", "the port is dropped", None, broken.outcome, [broken], "",
                    0.1),
    ], 0.2)


def test_reports_show_errors_apart_from_failures() -> None:
    rep = errored_report()
    assert rep.outcome is Outcome.ERROR
    assert rep.failed_ids() == ["closed-port"] and rep.errored_ids() == ["dropped-port"]
    text = report.terminal(rep, color=False)
    assert "FAIL  closed-port" in text and "ERROR dropped-port" in text
    assert "could not observe: portlab-probe could not be run on laptop (exit 127" in text
    assert "what to do: the node's own tools are missing or broken" in text
    assert "0 of 2 checks passed, 1 failed, 1 could not be judged (error)" in text
    data = report.as_dict(rep)
    assert data["status"] == "error"
    assert [c["status"] for c in data["checks"]] == ["fail", "error"]
    assert data["checks"][1]["error"].startswith("portlab-probe could not be run")
    assert data["checks"][0]["error"] is None


def test_junit_writes_error_elements_and_counts_them() -> None:
    import xml.etree.ElementTree as ET

    suite = ET.fromstring(report.junit(errored_report())).find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    assert suite.find("testcase[@name='closed-port']/failure") is not None
    error = suite.find("testcase[@name='dropped-port']/error")
    assert error is not None and "exit 127" in (error.get("message") or "")
    assert "what to do:" in (error.text or "")
