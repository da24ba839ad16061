"""Expectations that are not one value: `{not: X}`, `{not: [X, Y]}` and `{any: [X, Y]}`, for
`seen_source` and for a port's `state`: the loader reads and checks them, templates inside are
rendered, and the probe kinds judge them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from portlab.backend.base import ExecResult
from portlab.errors import LabError
from portlab.model.context import Binding
from portlab.model.types import Match
from portlab.probes import run_for
from portlab.probes.base import Outcome, ProbeRun
from portlab.probes.runner import resolve
from tests.unit.fakes import SECRET, FakeNodes, nonce_of, served
from tests.unit.labfiles import minimal, parse_data


def lab_with(probe: dict[str, Any]):  # type: ignore[no-untyped-def]
    data = minimal()
    data["nodes"]["c"] = {"interfaces": {"wan": {"network": "net", "host": 3}}}
    data["checks"][0]["probes"] = [{"from": "b", "to": "a.wan", "port": 80, **probe}]
    return parse_data(data)


def test_the_loader_reads_not_and_any() -> None:
    lab = lab_with({"kind": "http", "expect": {"seen_source": {"not": "c.wan"}}})
    assert lab.checks[0].probes[0].expect["seen_source"] == Match(("c.wan",), negate=True)
    lab = lab_with({"kind": "http", "expect": {"seen_source": {"any": ["b.wan", "c.wan"]}}})
    assert lab.checks[0].probes[0].expect["seen_source"] == Match(("b.wan", "c.wan"))
    lab = lab_with({"kind": "tcp", "expect": {"state": {"any": ["closed", "filtered"]}}})
    assert lab.checks[0].probes[0].expect["state"] == Match(("closed", "filtered"))
    lab = lab_with({"kind": "udp", "expect": {"state": {"not": ["open", "closed"]}}})
    assert lab.checks[0].probes[0].expect["state"] == Match(("open", "closed"), negate=True)


@pytest.mark.parametrize(("expect", "words"), [
    ({"seen_source": {"nope": "c.wan"}}, "expected a value, {any: [values]}"),
    ({"seen_source": {"any": "c.wan"}}, "expected a list of values"),
    ({"seen_source": {"not": "z.wan"}}, "'z.wan' is not a node.interface of this lab"),
    ({"seen_source": {"not": []}}, "expected a value or a list of values"),
])
def test_broken_matches_are_named(expect: dict[str, Any], words: str) -> None:
    with pytest.raises(LabError, match=words.replace("[", r"\[").replace("{", r"\{")):
        lab_with({"kind": "http", "expect": expect})


def test_a_state_outside_the_kinds_words_is_refused() -> None:
    with pytest.raises(LabError, match="expected one of"):
        lab_with({"kind": "tcp", "expect": {"state": {"any": ["open", "opened"]}}})


Answer = dict[str, Any] | Callable[[list[str]], dict[str, Any]]


def judge(kind: str, expect: dict[str, Any], answer: Answer) -> Any:
    lab = lab_with({"kind": kind, "expect": expect})
    binding = replace(Binding.preview(lab), secret=SECRET)
    nodes = FakeNodes(lambda node, argv: ExecResult(0, json.dumps(
        {"nonce": nonce_of(argv), **(answer(argv) if callable(answer) else answer)}) + "\n", ""))
    run: ProbeRun = resolve(lab.checks[0].probes[0], binding, nodes)
    return run_for(kind)(run)


def served_to(client: str) -> Callable[[list[str]], dict[str, Any]]:
    return lambda argv: {"state": "open", "status": 200, "nonce": nonce_of(argv),
                         "answer": served(argv, "a", f"{client}:40000")}


def test_seen_source_not_and_any_are_judged() -> None:
    b, c = "198.51.100.2", "198.51.100.3"
    assert judge("http", {"seen_source": {"not": "c.wan"}}, served_to(b)).outcome is Outcome.PASS
    bad = judge("http", {"seen_source": {"not": "c.wan"}}, served_to(c))
    assert bad.outcome is Outcome.FAIL and "it should not be c.wan = 198.51.100.3" in bad.why
    any_of = {"seen_source": {"any": ["b.wan", "c.wan"]}}
    assert judge("http", any_of, served_to(c)).outcome is Outcome.PASS
    other = judge("http", any_of, served_to("198.51.100.1"))
    assert other.outcome is Outcome.FAIL and "expected one of b.wan" in other.why


def test_seen_source_self_is_the_address_the_probe_sent_from() -> None:
    """`seen_source: self`: the server saw the probe's own address (with fresh_source, the one
    picked for it), whatever it was; a constant address, a friend's say, does not do."""
    def from_(local: str, client: str) -> Callable[[list[str]], dict[str, Any]]:
        return lambda argv: {**served_to(client)(argv), "local": f"{local}:40000"}

    lab = lab_with({"kind": "http", "expect": {"seen_source": "self"}})
    assert lab.checks[0].probes[0].expect["seen_source"] == "self"
    fresh = "198.51.100.77"
    assert judge("http", {"seen_source": "self"}, from_(fresh, fresh)).outcome is Outcome.PASS
    bad = judge("http", {"seen_source": "self"}, from_(fresh, "198.51.100.3"))
    assert bad.outcome is Outcome.FAIL and bad.seen == "wrong-source"
    assert bad.why == ("the server saw the connection coming from 198.51.100.3, expected "
                       "198.51.100.77, the address b sent from")
    from portlab.probes.base import CannotObserve
    with pytest.raises(CannotObserve, match="did not say which address it sent from"):
        judge("http", {"seen_source": "self"}, served_to(fresh))


@pytest.mark.parametrize(("state", "passed"), [("closed", True), ("filtered", True),
                                               ("open", False), ("unreachable", False)])
def test_a_tcp_state_any_of(state: str, passed: bool) -> None:
    got = judge("tcp", {"state": {"any": ["closed", "filtered"]}}, {"state": state})
    assert got.outcome is Outcome.of(passed)
    if not passed:
        assert "any of closed or filtered" in got.why


def test_a_udp_state_not() -> None:
    assert judge("udp", {"state": {"not": "open"}}, {"state": "filtered"}).outcome is Outcome.PASS
    got = judge("udp", {"state": {"not": "open"}}, {"state": "answered", "reply": "hi"})
    assert got.outcome is Outcome.FAIL


def test_templates_inside_a_match_are_rendered() -> None:
    lab = lab_with({"kind": "http",
                    "expect": {"seen_source": {"not": "{{ addr['c.wan'] }}"}}})
    run = resolve(lab.checks[0].probes[0], Binding.preview(lab), FakeNodes(
        lambda node, argv: ExecResult(0, "{}", "")))
    assert run.probe.expect["seen_source"] == Match(("198.51.100.3",), negate=True)



