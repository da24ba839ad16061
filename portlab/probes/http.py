"""http: GET a page; judge that it answered, with this instance's token, and who the server saw."""

from __future__ import annotations

from portlab.probes.base import Outcome, ProbeResult, ProbeRun
from portlab.probes.common import endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    path = r.probe.options.get("path", "/")
    host = r.probe.options.get("host_header")
    data = run_tool(r, ["http", str(r.target), str(r.probe.port), "--path", path]
                    + (["--host-header", str(host)] if host else []))
    answer = None
    if data.get("state") == "open" and "status" in data:
        body = data.get("json")
        answer = body if isinstance(body, dict) else {}  # a web server not of portlab's
    outcome, got, why = judge_answer(r, data, answer, "HTTP")
    if answer is not None and "status" in data:
        got = f"HTTP {data['status']}: " + got
        want_status = r.probe.expect.get("status")
        if outcome is Outcome.PASS and want_status and data["status"] != want_status:
            outcome, why = Outcome.FAIL, f"expected HTTP status {want_status}"
    contains = r.probe.expect.get("contains")
    if outcome is Outcome.PASS and contains is not None and contains not in data.get("body", ""):
        outcome, why = Outcome.FAIL, f"the page does not contain {contains!r}"
    sent = f"HTTP GET {path}" + (f" for host {host}" if host else "")
    return ProbeResult(outcome, sent, source_text(r, data), endpoint(r), got, why, data)
