"""minecraft: a Server List Ping (what the game's server list does) and its answer."""

from __future__ import annotations

from portlab.probes.base import ProbeResult, ProbeRun
from portlab.probes.common import endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    data = run_tool(r, ["minecraft", str(r.target), str(r.probe.port)])
    status = data.get("status")
    answer = None
    if data.get("state") == "open" and isinstance(status, dict):
        answer = status.get("portlab") if isinstance(status.get("portlab"), dict) else {
            "node": "?", "client": "?"}
    outcome, got, why = judge_answer(r, data, answer, "Minecraft status")
    if answer is not None and data.get("latency_ms") is not None:
        got += f"; ping {data['latency_ms']} ms"
    if data.get("state") == "error" and data.get("error"):
        got += f" [{data['error']}]"
    return ProbeResult(outcome, "Minecraft status ping (Server List Ping)", source_text(r, data),
                       endpoint(r), got, why, data)
