"""udp: send one datagram to a portlab-serve udp server and judge the reply."""

from __future__ import annotations

from portlab.checks import ProbeResult, ProbeRun, ProbeSpec
from portlab.checks.common import ANSWER_EXPECTS, endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    data = run_tool(r, ["udp", str(r.target), str(r.probe.port)])
    body = data.get("json") if data.get("state") == "answered" else None
    answer = body if isinstance(body, dict) else None
    passed, got, why = judge_answer(r, data, answer, "UDP")
    return ProbeResult(passed, "one UDP datagram", source_text(r, data), endpoint(r), got, why,
                       data)


SPEC = ProbeSpec(
    kind="udp",
    summary="UDP datagram: does the server reply, and whom did it see?",
    run=run,
    options={"timeout": float, "device": str},
    expects=ANSWER_EXPECTS,
)
