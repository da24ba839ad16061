"""tcp: open a TCP connection; judge the port's state (open/closed/filtered) and its banner."""

from __future__ import annotations

from portlab.model.types import Match
from portlab.probes.base import Outcome, ProbeResult, ProbeRun
from portlab.probes.common import describe_state, endpoint, run_tool, source_text

WORDS = {"closed-or-filtered": "closed or filtered"}


def run(r: ProbeRun) -> ProbeResult:
    expect = r.probe.expect
    argv = ["tcp", str(r.target), str(r.probe.port)]
    want_banner = expect.get("banner")
    if want_banner is not None:
        argv.append("--banner")
    data = run_tool(r, argv)
    state = data["state"]
    got = describe_state(data)
    if data.get("banner"):
        got += f"; first line: {data['banner']!r}"
    sent = "TCP connection attempt (SYN)" + (" and read the banner" if want_banner else "")
    passed = True
    why = ""
    want = expect.get("state")
    if want is not None:
        passed = (any(_is(state, v) for v in want.values) != want.negate
                  if isinstance(want, Match) else _is(state, want))
        why = "" if passed else (
            "the port is open from here, and it should not be" if want == "not-open"
            else f"expected the port {WORDS.get(str(want), want)}, it was {state}")
    if passed and want_banner is not None:
        banner = data.get("banner", "")
        passed = state == "open" and want_banner in banner
        why = "" if passed else f"expected a first line containing {want_banner!r}"
    return ProbeResult(Outcome.of(passed), sent, source_text(r, data), endpoint(r), got, why,
                       data)


def _is(state: str, want: str) -> bool:
    """Whether a port in `state` is what `want` says (a state, not-open, closed-or-filtered)."""
    if want == "not-open":
        return state in ("closed", "filtered", "unreachable")
    if want == "closed-or-filtered":
        return state in ("closed", "filtered")
    return state == want
