"""minecraft: a Server List Ping (what the game's server list does) and its answer."""

from __future__ import annotations

from portlab.checks import ProbeResult, ProbeRun, ProbeSpec
from portlab.checks.common import ANSWER_EXPECTS, endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    data = run_tool(r, ["minecraft", str(r.target), str(r.probe.port)])
    status = data.get("status")
    answer = None
    if data.get("state") == "open" and isinstance(status, dict):
        answer = status.get("portlab") if isinstance(status.get("portlab"), dict) else {
            "node": "?", "client": "?"}
    passed, got, why = judge_answer(r, data, answer, "Minecraft status")
    if answer is not None and data.get("latency_ms") is not None:
        got += f"; ping {data['latency_ms']} ms"
    if data.get("state") == "error" and data.get("error"):
        got += f" [{data['error']}]"
    return ProbeResult(passed, "Minecraft status ping (Server List Ping)", source_text(r, data),
                       endpoint(r), got, why, data)


SPEC = ProbeSpec(
    kind="minecraft",
    summary="Minecraft Server List Ping: does a game server answer, and whom did it see?",
    run=run,
    options={"timeout": float, "device": str},
    expects=ANSWER_EXPECTS,
)
