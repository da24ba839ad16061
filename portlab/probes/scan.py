"""scan: nmap on the `from` node, at one address (a node's interface, never a subnet), several
ports at once; each port judged in nmap's own words.

    nmap -Pn -n -oX - --max-retries 1 --host-timeout Ns -p P1,P2,... [-sU] ADDRESS

`-Pn`: no host discovery (a firewall that drops pings would hide the host);
`-n`: no name lookups. The ports scanned are the expected ones plus
`ports:`; the feedback names every port's state, so a learner sees the whole
picture a scanner gives ("22 filtered, 80 open, 3306 filtered"). nmap's XML
report is read with the standard library's XML parser. No report, or a host
nmap could not finish, is an error (CannotObserve), never a verdict.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from portlab.model.probekinds import SECONDS, KindSchema, PortList, PortStates
from portlab.model.types import Match
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, MISSING

DEFAULT_SECONDS = 10.0


def argv_for(ports: list[int], proto: str, seconds: float, target: str) -> list[str]:
    return ["nmap", "-Pn", "-n", "-oX", "-", "--max-retries", "1", "--host-timeout",
            f"{max(1, round(seconds))}s", "-p", ",".join(str(p) for p in ports),
            *(["-sU"] if proto == "udp" else []), *(["-6"] if ":" in target else []), target]


def states_of(report: str) -> dict[int, str]:
    """port -> nmap's state, from its XML report (-oX -). Raises ValueError on anything else."""
    root = ET.fromstring(report)
    if root.tag != "nmaprun":
        raise ValueError(f"not an nmap report (<{root.tag}>)")
    found: dict[int, str] = {}
    for port in root.iter("port"):
        state = port.find("state")
        if state is None or not port.get("portid"):
            raise ValueError("a port without its state")
        found[int(port.get("portid", "0"))] = state.get("state", "")
    return found


def _is(state: str, want: str) -> bool:
    return state != "open" if want == "not-open" else state == want


# nmap's words for a port, and "not-open" (anything but open)
NMAP_STATES = ("open", "closed", "filtered", "open|filtered", "closed|filtered", "unfiltered",
               "not-open")


def _valid(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    if not expect.get("ports"):
        return "a scan probe needs expect.ports: the state expected on each port"
    return None


def run(job: ProbeRun) -> ProbeResult:
    opts, expect = job.probe.options, job.probe.expect
    wanted: dict[int, Any] = expect["ports"]
    ports = sorted(set(wanted) | set(opts.get("ports") or []))
    proto = str(opts.get("proto", "tcp"))
    argv = argv_for(ports, proto, float(opts.get("timeout") or DEFAULT_SECONDS), str(job.target))
    sent = f"an nmap {proto.upper()} scan of ports {', '.join(map(str, ports))}"
    source = f"{job.source} ({job.source_address})"
    target = (f"{job.target_name} = {job.target}" if job.target_name != job.target
              else str(job.target))
    done = job.nodes.exec(job.source, argv)
    said = (done.stderr or done.stdout).strip()[-300:]
    if done.exit_code in MISSING:
        raise CannotObserve(f"nmap could not be run on {job.source} (exit {done.exit_code}: "
                            f"{said})", f"the node's own tools are missing: {FRESH}", sent=sent)
    try:
        found = states_of(done.stdout)
    except (ET.ParseError, ValueError) as exc:
        raise CannotObserve(f"nmap on {job.source} gave no report to read ({exc}; exit "
                            f"{done.exit_code}: {said})",
                            f"run it by hand on {job.source}: {' '.join(argv)}",
                            sent=sent) from None
    missing = [p for p in ports if p not in found]
    if missing:
        raise CannotObserve(f"nmap's report names no state for port(s) "
                            f"{', '.join(map(str, missing))} (the scan did not finish within "
                            "its time)", f"run it by hand on {job.source}: {' '.join(argv)}",
                            sent=sent, data={"ports": found})
    got = ", ".join(f"{p} {found[p]}" for p in ports)
    wrong = []
    for port, want in wanted.items():
        ok = (any(_is(found[port], v) for v in want.values) != want.negate
              if isinstance(want, Match) else _is(found[port], want))
        if not ok:
            wrong.append(f"port {port}: expected {want}, nmap says {found[port]}")
    return ProbeResult(Outcome.of(not wrong), sent, source, f"{target} ({proto})",
                       f"nmap says: {got}", "; ".join(wrong),
                       {"ports": {str(p): s for p, s in found.items()}, "argv": argv})


SCHEMA = KindSchema("scan",
                    "nmap from a node at one address (never a subnet): several ports, each in "
                    "nmap's words (open, closed, filtered, open|filtered)",
                    options={"ports": PortList(), "proto": ("tcp", "udp"), "timeout": SECONDS,
                             "ipv6": bool},
                    expects={"ports": PortStates(NMAP_STATES)}, needs_port=False,
                    validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=())
