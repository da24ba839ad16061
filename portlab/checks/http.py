"""http: GET a page; judge that it answered, with this instance's token, and who the server saw."""

from __future__ import annotations

from portlab.checks import ProbeResult, ProbeRun, ProbeSpec
from portlab.checks.common import ANSWER_EXPECTS, endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    path = r.probe.options.get("path", "/")
    data = run_tool(r, ["http", str(r.target), str(r.probe.port), "--path", path])
    answer = None
    if data.get("state") == "open" and "status" in data:
        body = data.get("json")
        answer = body if isinstance(body, dict) else {"node": "?", "client": "?"}
    passed, got, why = judge_answer(r, data, answer, "HTTP")
    if answer is not None and "status" in data:
        got = f"HTTP {data['status']}: " + got
        want_status = r.probe.expect.get("status")
        if passed and want_status and data["status"] != want_status:
            passed, why = False, f"expected HTTP status {want_status}"
    contains = r.probe.expect.get("contains")
    if passed and contains is not None and contains not in data.get("body", ""):
        passed, why = False, f"the page does not contain {contains!r}"
    return ProbeResult(passed, f"HTTP GET {path}", source_text(r, data), endpoint(r), got, why,
                       data)


SPEC = ProbeSpec(
    kind="http",
    summary="HTTP GET: does the web server answer, and whom did it see?",
    run=run,
    options={"path": str, "timeout": float, "device": str},
    expects={**ANSWER_EXPECTS, "status": int, "contains": str},
)
