"""tcp: open a TCP connection; judge the port's state (open/closed/filtered), its banner, and
(with answer expectations) the greeting of a portlab-serve tcp server: who served it, whom it
saw."""

from __future__ import annotations

from typing import Any

from portlab.errors import printable
from portlab.model.probekinds import ANSWER_EXPECTS, DEVICE, SENDS, KindSchema, OneOf
from portlab.model.types import Match
from portlab.probes.base import Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import (
    ANSWER_KEYS,
    Heard,
    describe_state,
    endpoint,
    judge_answer,
    run_tool,
    source_text,
)

WORDS = {"closed-or-filtered": "closed or filtered"}


TCP_STATES = ("open", "closed", "filtered", "unreachable", "not-open", "closed-or-filtered")


def _valid(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    if "state" not in expect and "banner" not in expect and not \
            any(k in expect for k in ANSWER_EXPECTS):
        return ("a tcp probe needs expect.state, expect.banner, or what the server's greeting "
                "should say (token, served_by, seen_source)")
    return None


def run(job: ProbeRun) -> ProbeResult:
    expect = job.probe.expect
    argv = ["tcp", str(job.target), str(job.probe.port)]
    want_banner = expect.get("banner")
    judged = any(k in expect for k in ANSWER_KEYS)
    if want_banner is not None or judged:
        argv.append("--banner")
    data = run_tool(job, argv)
    state = data["state"]
    got = describe_state(data)
    raw_banner = data.get("banner")
    banner = raw_banner if isinstance(raw_banner, str) else ""
    if banner:
        got += f"; first line: {printable(banner[:120])!r}"
    sent = "TCP connection attempt (SYN)" + (" and read the banner" if "--banner" in argv else "")
    passed = True
    why = ""
    want = expect.get("state")
    if want is not None:
        passed = (any(_is(state, v) for v in want.values) != want.negate
                  if isinstance(want, Match) else _is(state, want))
        why = "" if passed else (
            "the port is open from here, and it should not be" if want == "not-open"
            else f"expected the port {WORDS.get(str(want), want)}, it was {state}")
    if passed and want_banner is not None:
        passed = state == "open" and str(want_banner) in banner
        why = "" if passed else f"expected a first line containing {printable(want_banner)!r}"
    if passed and judged:
        outcome, got, why, seen = judge_answer(job, data, Heard(state == "open" and bool(banner),
                                                               data.get("answer")), "TCP greeting")
        return ProbeResult(outcome, sent, source_text(job, data), endpoint(job), got, why, data,
                           seen=seen)
    return ProbeResult(Outcome.of(passed), sent, source_text(job, data), endpoint(job), got, why,
                       data)


def _is(state: str, want: str) -> bool:
    """Whether a port in `state` is what `want` says (a state, not-open, closed-or-filtered)."""
    if want == "not-open":
        return state in ("closed", "filtered", "unreachable")
    if want == "closed-or-filtered":
        return state in ("closed", "filtered")
    return state == want


SCHEMA = KindSchema("tcp", "TCP connect: is the port open, closed or filtered from this node?",
                    options=SENDS, expects={"state": OneOf(TCP_STATES), "banner": str,
                                            **ANSWER_EXPECTS},
                    interfaces=DEVICE, validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=("sockets.py",))
