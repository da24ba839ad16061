"""udp: send one datagram to a portlab-serve udp server and judge the reply."""

from __future__ import annotations

from portlab.probes.base import ProbeResult, ProbeRun
from portlab.probes.common import endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    data = run_tool(r, ["udp", str(r.target), str(r.probe.port)])
    body = data.get("json") if data.get("state") == "answered" else None
    answer = body if isinstance(body, dict) else None
    outcome, got, why = judge_answer(r, data, answer, "UDP")
    return ProbeResult(outcome, "one UDP datagram", source_text(r, data), endpoint(r), got, why,
                       data)
