"""http: GET a page; judge that it answered, with this instance's token, and who the server saw."""

from __future__ import annotations

from portlab.errors import printable
from portlab.probes.base import Outcome, ProbeResult, ProbeRun
from portlab.probes.common import Heard, endpoint, judge_answer, run_tool, source_text


def run(r: ProbeRun) -> ProbeResult:
    path = r.probe.options.get("path", "/")
    host = r.probe.options.get("host_header")
    data = run_tool(r, ["http", str(r.target), str(r.probe.port), "--path", path]
                    + (["--host-header", str(host)] if host else []))
    answered = data.get("state") == "open" and isinstance(data.get("status"), int)
    outcome, got, why = judge_answer(r, data, Heard(answered, data.get("answer")), "HTTP")
    if answered:
        got = f"HTTP {data['status']}: " + got
        want_status = r.probe.expect.get("status")
        if outcome is Outcome.PASS and want_status and data["status"] != want_status:
            outcome, why = Outcome.FAIL, f"expected HTTP status {want_status}"
    contains = r.probe.expect.get("contains")
    raw_body = data.get("body")
    body = raw_body if isinstance(raw_body, str) else ""
    if outcome is Outcome.PASS and contains is not None and str(contains) not in body:
        outcome, why = Outcome.FAIL, f"the page does not contain {printable(contains)!r}"
    sent = f"HTTP GET {path}" + (f" for host {host}" if host else "")
    return ProbeResult(outcome, sent, source_text(r, data), endpoint(r), got, why, data)
