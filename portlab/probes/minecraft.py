"""minecraft: a Server List Ping (what the game's server list does) and its answer."""

from __future__ import annotations

from portlab.model.probekinds import ANSWER_EXPECTS, DEVICE, SENDS, KindSchema
from portlab.probes.base import ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import Heard, endpoint, judge_answer, run_tool, source_text


def run(job: ProbeRun) -> ProbeResult:
    data = run_tool(job, ["minecraft", str(job.target), str(job.probe.port)])
    answered = data.get("state") == "open" and isinstance(data.get("status"), dict)
    outcome, got, why, seen = judge_answer(job, data, Heard(answered, data.get("answer")),
                                     "Minecraft status")
    if answered and data.get("latency_ms") is not None:
        got += f"; ping {data['latency_ms']} ms"
    return ProbeResult(outcome, "Minecraft status ping (Server List Ping)", source_text(job, data),
                       endpoint(job), got, why, data, seen=seen)


SCHEMA = KindSchema("minecraft",
                    "Minecraft Server List Ping: does a game server answer, and whom did it "
                    "see?", options=SENDS, expects=ANSWER_EXPECTS, interfaces=DEVICE)
KIND = ProbeKind(SCHEMA, run, node=("sockets.py",))
