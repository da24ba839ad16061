"""scan: nmap on the `from` node, at one address (a node's interface, never a subnet), several
ports at once; each port judged in nmap's own words.

    nmap -Pn -n -oX - --max-retries 1 --host-timeout Ns -p P1,P2,... [-sU] ADDRESS

`-Pn`: no host discovery (a firewall that drops pings would hide the host);
`-n`: no name lookups. The ports scanned are the expected ones plus
`ports:`; with `expect.others: not-open`, every port (`-p-`, fast: a lab's
bridge loses nothing), and any open port not named fails the probe; the
feedback names every port's state, so a learner sees the whole picture a
scanner gives ("22 filtered, 80 open, 3306 filtered"). nmap's XML report is
read with the standard library's XML parser. No report, or a host nmap
could not finish, is an error (CannotObserve), never a verdict.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from portlab.model.probekinds import SECONDS, KindSchema, PortList, PortStates
from portlab.model.types import Match
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, MISSING

DEFAULT_SECONDS = 10.0


ALL_PORTS_SECONDS = 40.0  # every TCP port of a node that drops them all: about 7 s here
ALL_PORTS_RATE = "20000"  # packets per second: 65535 ports in a few seconds, on a lab's bridge


def argv_for(ports: list[int], proto: str, seconds: float, target: str,
             every: bool = False) -> list[str]:
    """nmap's command line: `ports`, or with `every` all ports 1-65535 (open ones listed)."""
    which = ["-p-", "--min-rate", ALL_PORTS_RATE] if every else \
        ["-p", ",".join(str(p) for p in ports)]
    return ["nmap", "-Pn", "-n", "-oX", "-", "--max-retries", "1", "--host-timeout",
            f"{max(1, round(seconds))}s", *which,
            *(["-sU"] if proto == "udp" else []), *(["-6"] if ":" in target else []), target]


def states_of(report: str) -> dict[int, str]:
    """port -> nmap's state, from its XML report (-oX -). Raises ValueError on anything else.
    Ports nmap left out (`<extraports>`, "Not shown: 65533 closed") are never open."""
    root = ET.fromstring(report)
    if root.tag != "nmaprun":
        raise ValueError(f"not an nmap report (<{root.tag}>)")
    if root.find("runstats/finished") is None:
        raise ValueError("the report does not say the scan finished")
    found: dict[int, str] = {}
    for port in root.iter("port"):
        state = port.find("state")
        if state is None or not port.get("portid"):
            raise ValueError("a port without its state")
        found[int(port.get("portid", "0"))] = state.get("state", "")
    return found


def _left_out(report: str) -> str:
    """The state of the ports an nmap report leaves out (`<extraports>`): one state when they
    all share it, else "closed|filtered" (never open: nmap lists every open port)."""
    states = {e.get("state", "") for e in ET.fromstring(report).iter("extraports")}
    return states.pop() if len(states) == 1 and states <= {"closed", "filtered"} \
        else "closed|filtered"


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
    every = "others" in expect  # every other port must not be open: scan them all
    seconds = float(opts.get("timeout") or (ALL_PORTS_SECONDS if every else DEFAULT_SECONDS))
    argv = argv_for(ports, proto, seconds, str(job.target), every)
    sent = (f"an nmap {proto.upper()} scan of every port (1-65535)" if every else
            f"an nmap {proto.upper()} scan of ports {', '.join(map(str, ports))}")
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
    if every:  # nmap lists every open port; those it leaves out are its "Not shown" ones
        found = {**{p: _left_out(done.stdout) for p in ports}, **found}
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
    seen = "open" if wrong and all("nmap says open" in w for w in wrong) else ""
    if every:
        extra = sorted(p for p, state in found.items() if p not in ports and state == "open")
        shown = extra[:MAX_LISTED]
        more = f" and {len(extra) - len(shown)} more" if len(extra) > len(shown) else ""
        got += (f"; also open: {', '.join(map(str, shown))}{more}" if extra
                else "; every other port closed or filtered")
        if extra:
            wrong.append(f"port{'s' if len(extra) > 1 else ''} {', '.join(map(str, shown))}"
                         f"{more} open too, and only the ports named should be: each open "
                         "port is a way in from here")
            seen = "open"
    return ProbeResult(Outcome.of(not wrong), sent, source, f"{target} ({proto})",
                       f"nmap says: {got}", "; ".join(wrong),
                       {"ports": {str(p): s for p, s in list(found.items())[:MAX_PORTS]},
                        "argv": argv}, seen=seen)


MAX_LISTED = 10  # other open ports named in the feedback
MAX_PORTS = 1000  # ports kept in the raw answer


SCHEMA = KindSchema("scan",
                    "nmap from a node at one address (never a subnet): several ports, each in "
                    "nmap's words (open, closed, filtered, open|filtered)",
                    options={"ports": PortList(), "proto": ("tcp", "udp"), "timeout": SECONDS,
                             "ipv6": bool},
                    expects={"ports": PortStates(NMAP_STATES), "others": ("not-open",)},
                    needs_port=False,
                    validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=())
