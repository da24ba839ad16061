"""A probe's answer survives Docker losing the output of its exec (checks/common.tool_on)."""

from __future__ import annotations

import json

import pytest

from portlab.backend.base import ExecResult
from portlab.model.types import Probe
from portlab.probes.base import CannotObserve, ProbeRun
from portlab.probes.common import ANSWER_READS, tool_on
from tests.unit.fakes import FakeNodes

ANSWER = {"state": "open", "kind": "tcp"}


def run_with(outputs: list[ExecResult],
             calls: list[list[str]] | None = None) -> tuple[dict, list[list[str]]]:
    calls = [] if calls is None else calls

    def fake_exec(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        return outputs.pop(0)

    probe = Probe("tcp", "a", "10.0.0.2", 80, {}, {}, "checks[0].probes[0]")
    run = ProbeRun(probe, "a", "10.0.0.1", "10.0.0.2", "10.0.0.2", {"addr": {}},
                   FakeNodes(fake_exec))
    return tool_on(run, "a", ["tcp", "10.0.0.2", "80"]), calls


def test_the_printed_answer_is_used_when_it_arrives() -> None:
    data, calls = run_with([ExecResult(0, json.dumps(ANSWER) + "\n", "")])
    assert data == ANSWER
    assert len(calls) == 1


def test_a_lost_output_is_read_from_the_saved_answer_without_probing_again() -> None:
    saved = json.dumps(ANSWER) + "\n"
    data, calls = run_with([ExecResult(0, "", ""), ExecResult(0, "", ""),
                            ExecResult(0, saved, "")])
    assert data == ANSWER
    path = calls[0][2]
    assert calls[0][:2] == ["portlab-probe", "--save"] and path.endswith(".json")
    assert calls[1:] == [["cat", path], ["cat", path]]  # the probe itself ran once


def test_an_answer_that_never_arrives_is_an_error_not_a_verdict() -> None:
    calls: list[list[str]] = []
    with pytest.raises(CannotObserve) as info:
        run_with([ExecResult(0, "", "")] * (1 + ANSWER_READS), calls)
    assert "was lost" in info.value.reason  # since the shape issue: an error outcome, raised
    assert len(calls) == 1 + ANSWER_READS


def test_a_failed_probe_is_reported_with_its_message() -> None:
    with pytest.raises(CannotObserve) as info:
        run_with([ExecResult(2, "", "portlab-probe: error: bad port")])
    assert "bad port" in info.value.reason
