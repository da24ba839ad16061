"""http: GET a page; judge that it answered, with this instance's token, and who the server saw."""

from __future__ import annotations

import re
from typing import Any

from portlab.errors import printable
from portlab.model.probekinds import ANSWER_EXPECTS, DEVICE, SENDS, KindSchema
from portlab.model.types import Range
from portlab.probes.base import Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import Heard, endpoint, judge_answer, run_tool, source_text

# A Host header a lab may send: a host name (or address), perhaps a port; never a second header.
HOST_HEADER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def _valid(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    host = options.get("host_header")
    if isinstance(host, str) and "{" not in host and not HOST_HEADER.match(host):
        return (f"host_header {host!r} is not a host name (letters, digits, dots and dashes, "
                "perhaps :PORT)")
    return None


def run(job: ProbeRun) -> ProbeResult:
    path = job.probe.options.get("path", "/")
    host = job.probe.options.get("host_header")
    data = run_tool(job, ["http", str(job.target), str(job.probe.port), "--path", path]
                    + (["--host-header", str(host)] if host else []))
    answered = data.get("state") == "open" and isinstance(data.get("status"), int)
    outcome, got, why, seen = judge_answer(job, data, Heard(answered, data.get("answer")), "HTTP")
    if answered:
        got = f"HTTP {data['status']}: " + got
        want_status = job.probe.expect.get("status")
        if outcome is Outcome.PASS and want_status and data["status"] != want_status:
            outcome, why, seen = Outcome.FAIL, f"expected HTTP status {want_status}", "wrong-answer"
    contains = job.probe.expect.get("contains")
    raw_body = data.get("body")
    body = raw_body if isinstance(raw_body, str) else ""
    if outcome is Outcome.PASS and contains is not None and str(contains) not in body:
        outcome, why, seen = (Outcome.FAIL, f"the page does not contain {printable(contains)!r}",
                              "wrong-answer")
    sent = f"HTTP GET {path}" + (f" for host {host}" if host else "")
    return ProbeResult(outcome, sent, source_text(job, data), endpoint(job), got, why, data,
                       seen=seen)


SCHEMA = KindSchema("http", "HTTP GET: does the web server answer, and whom did it see?",
                    options={"path": str, "host_header": str, **SENDS},
                    expects={**ANSWER_EXPECTS, "status": Range(100, 599), "contains": str},
                    interfaces=DEVICE, validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=("sockets.py",))
