"""udp: send one datagram; judge the reply of a portlab-serve udp server, or the port's state.

A UDP port's state, in a scanner's words: *open* (something answered),
*closed* (an ICMP port-unreachable came back), *open|filtered* (nothing came
back: a silent server, or a firewall that drops; nothing on the wire tells
which), *unreachable* (no route, or an ICMP host-unreachable or "prohibited").
"""

from __future__ import annotations

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

# portlab-probe's state -> a scanner's
SCANNER = {"answered": "open", "closed": "closed", "filtered": "open|filtered",
           "unreachable": "unreachable", "error": "open"}
SILENCE = ("no answer came back before the timeout: a silent server or a firewall that drops "
           "it, and nothing on the wire tells which (a scanner would say: open|filtered)")
CLOSED = "an ICMP port unreachable came back at once (a scanner would say: closed)"


# UDP in a scanner's words: a datagram no one answers may have reached a silent server or been
# dropped by a firewall, and nothing on the wire tells which: "open|filtered".
UDP_STATES = ("open", "closed", "open|filtered", "unreachable", "not-open")


def run(job: ProbeRun) -> ProbeResult:
    argv = ["udp", str(job.target), str(job.probe.port)]
    payload = job.probe.options.get("payload")
    if payload:
        argv += ["--payload", str(payload)]
    data = run_tool(job, argv)
    expect = job.probe.expect
    state = SCANNER.get(str(data.get("state")), "open")
    sent = "one UDP datagram" + (f" ({str(payload)[:40]!r})" if payload else "")
    answered = data.get("state") == "answered"
    answer = data.get("answer") if answered else None
    heard = Heard(answered, answer)
    want = expect.get("state")
    if want is not None:
        got = {"open|filtered": SILENCE, "closed": CLOSED}.get(state, describe_state(data))
        if state == "open" and answer is None:
            got = f"an answer came back: {printable(str(data.get('reply', ''))[:80])!r}"
        passed = (any(_is(state, v) for v in want.values) != want.negate
                  if isinstance(want, Match) else _is(state, want))
        why = "" if passed else (
            "something answered on that port, and nothing should" if want == "not-open"
            else f"expected the port {want}, it was {state}")
        if passed and any(k in expect for k in ANSWER_KEYS):
            outcome, got, why, seen = judge_answer(job, data, heard, "UDP")
            return ProbeResult(outcome, sent, source_text(job, data), endpoint(job), got, why, data,
                               seen=seen)
        return ProbeResult(Outcome.of(passed), sent, source_text(job, data), endpoint(job),
                           f"{got} [state: {state}]", why, data)
    outcome, got, why, seen = judge_answer(job, data, heard, "UDP")
    if data.get("state") == "filtered":
        got = SILENCE
    return ProbeResult(outcome, sent, source_text(job, data), endpoint(job), got, why, data,
                       seen=seen)


def _is(state: str, want: str) -> bool:
    return state != "open" if want == "not-open" else state == want


SCHEMA = KindSchema("udp", "UDP datagram: does the server reply, and whom did it see? Or the "
                    "port's state in a scanner's words (open, closed, open|filtered)",
                    options={"payload": str, **SENDS},
                    expects={**ANSWER_EXPECTS, "state": OneOf(UDP_STATES)}, interfaces=DEVICE)
KIND = ProbeKind(SCHEMA, run, node=("sockets.py",))
