"""scan: nmap on the `from` node, at one address (a node's interface, never a subnet), several
ports at once; each port judged in nmap's own words.

    nmap -Pn -n -oX - --max-retries 1 --host-timeout Ns -p P1,P2,... [-sU] ADDRESS

`-Pn`: no host discovery (a firewall that drops pings would hide the host);
`-n`: no name lookups. The ports scanned are the expected ones plus
`ports:`; with `expect.others: not-open`, then every port nmap knows a
service for (KNOWN_PORTS, below), and any open one not named fails; the
feedback names every port's state, so a learner sees the whole picture a
scanner gives ("22 filtered, 80 open, 3306 filtered"). nmap's XML report is
read with the standard library's XML parser. No report, or a host nmap
could not finish, is an error (CannotObserve), never a verdict.

With `fresh_source: true` the scan comes from an address of the source's
network picked at random for this one scan (added to the source node, then
removed): a firewall rule that names the scanners' addresses does not hold it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from portlab.model.probekinds import SECONDS, KindSchema, PortList, PortStates
from portlab.model.types import Match
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, MISSING, Fresh, fresh_address, fresh_failed

DEFAULT_SECONDS = 10.0


# `expect.others: not-open` scans every port nmap knows a service for (nmap-services: 8,366
# TCP ports, those seen open on the internet, 80 and 31337 and 25565 among them), not all
# 65,535: each probed port that a firewall drops takes an entry in the host's connection
# table (bridged traffic is tracked there) for 120 s, and that table's limit is shared by
# every lab on the machine (262,144 here). Measured: one full scan of a router that drops
# took 131,076 entries, so two at once would fill it; the known ports take 6%.
#
# A port nmap does not know (a forward on 47123) is found another way: the target node's own
# tables and sockets name the ports it forwards or serves, and those are scanned too. Only
# which ports to send to comes from the node; whether they are open is still what nmap sees.
KNOWN_PORTS = ["--top-ports", "10000"]  # more than nmap knows: all it knows
# a guard, not a pace: nmap's known ports on a node that drops them all take about 4 s here;
# a machine checking 50 labs at once on 2 cores needs more
KNOWN_SECONDS = 60.0
KNOWN_RATE = "5000"  # packets per second, on a lab's own bridge


def argv_for(ports: list[int], proto: str, seconds: float, target: str,
             known: bool = False, spoof: tuple[str, ...] = (), fast: bool = False,
             connect: bool = False) -> list[str]:
    """nmap's command line: `ports`, or with `known` every port nmap knows (open ones listed).
    Many ports (`known`, or `fast`: the ports a node names) go at KNOWN_RATE: a node that
    drops them all would otherwise hold nmap at its cautious pace (measured on the firewall
    lab's server: 14 named ports 1.6 s, at that rate 0.5 s). `connect` (TCP): nmap's connect
    scan (-sT), whole connections by the node's own TCP stack, not its raw bare SYNs."""
    which = [*KNOWN_PORTS] if known else ["-p", ",".join(str(p) for p in ports)]
    return ["nmap", "-Pn", "-n", "-oX", "-", "--max-retries", "1", "--host-timeout",
            f"{max(1, round(seconds))}s", *which,
            *(["--min-rate", KNOWN_RATE] if known or fast else []),
            *(["-sT"] if connect and proto == "tcp" else []),
            *(["-sU"] if proto == "udp" else []), *(["-6"] if ":" in target else []),
            *spoof, target]


# Read on the target node: the ports its rules name (DNAT, REDIRECT, accepts, ranges) and the
# ports it listens on. A number is a port candidate unless it is part of a dotted address.
# iptables-legacy's tables too: the kernel applies them beside nftables', and
# `iptables-save` (the nft one) does not list them.
NAMED_PORTS = ("sh", "-c", "iptables-save; ip6tables-save; iptables-legacy-save; "
                           "ip6tables-legacy-save; nft list ruleset; ss -Hltnu")
NUMBER = re.compile(r"(?<![\d.])(\d{1,5})(?![\d.])")
MAX_NAMED = 2000  # candidate ports scanned at most (the node's output is the learner's)
MAX_READ = 256 * 1024  # characters of the node's output read


def named_ports(text: str) -> list[int]:
    """The port numbers a node's rules and sockets name, in order, at most MAX_NAMED."""
    seen: dict[int, None] = {}
    for number in NUMBER.finditer(text[:MAX_READ]):
        port = int(number.group(1))
        if 0 < port < 65536:
            seen[port] = None
            if len(seen) >= MAX_NAMED:
                break
    return list(seen)


def target_node(job: ProbeRun) -> str | None:
    """The node a probe's target names ("router.wan" -> "router"), None for an address."""
    table = job.context.get("addr6" if job.probe.options.get("ipv6") else "addr") or {}
    return job.target_name.split(".")[0] if job.target_name in table else None


def states_of(report: str) -> dict[int, str]:
    """port -> nmap's state, from its XML report (-oX -). Raises ValueError on anything else.
    Ports nmap left out (`<extraports>`, "Not shown: 65533 closed") are never open."""
    root = ET.fromstring(report)
    if root.tag != "nmaprun":
        raise ValueError(f"not an nmap report (<{root.tag}>)")
    if root.find("runstats/finished") is None:
        raise ValueError("the report does not say the scan finished")
    if any(host.get("timedout") == "true" for host in root.iter("host")):
        raise ValueError("nmap gave up on the host before the scan ended (--host-timeout)")
    found: dict[int, str] = {}
    for port in root.iter("port"):
        state = port.find("state")
        if state is None or not port.get("portid"):
            raise ValueError("a port without its state")
        found[int(port.get("portid", "0"))] = state.get("state", "")
    return found


SCAN_TRIES = 2  # a report lost or garbled on its way from the node: the scan runs once more


def _scan(job: ProbeRun, argv: list[str], sent: str, fresh: Fresh | None) -> dict[int, str]:
    """port -> nmap's state, for the ports it lists (with --top-ports, the open ones and any
    whose state differs from the rest); CannotObserve when there is no report to read.

    With 50 labs checked at once, Docker now and then loses or garbles the output of an exec
    (moby/moby#27289): nmap finished (exit 0), and what arrived is no report, or none at all.
    That is the transport's, not an observation: the scan is made once more, and its report
    decides. nmap failing (another exit) is never retried. From a `fresh` address, each scan
    runs under portlab-fresh (the address added for it alone)."""
    for attempt in range(1, SCAN_TRIES + 1):
        done = job.nodes.exec(job.source, [*(fresh.prefix if fresh else ()), *argv])
        fresh_failed(job, done, fresh)
        said = (done.stderr or done.stdout).strip()[-300:]
        if done.exit_code in MISSING:
            raise CannotObserve(f"nmap could not be run on {job.source} (exit "
                                f"{done.exit_code}: {said})",
                                f"the node's own tools are missing: {FRESH}", sent=sent)
        try:
            return states_of(done.stdout)
        except (ET.ParseError, ValueError) as exc:
            if done.exit_code == 0 and attempt < SCAN_TRIES:
                continue
            raise CannotObserve(f"nmap on {job.source} gave no report to read ({exc}; exit "
                                f"{done.exit_code}: {said})",
                                f"run it by hand on {job.source}: {' '.join(argv)}",
                                sent=sent) from None
    raise AssertionError("unreachable")  # the loop returns or raises


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
    if not job.probe.options.get("fresh_source"):
        return _run(job)
    with fresh_address(job) as fresh:
        return _run(job, fresh)


def _run(job: ProbeRun, fresh: Fresh | None = None) -> ProbeResult:
    opts, expect = job.probe.options, job.probe.expect
    wanted: dict[int, Any] = expect["ports"]
    ports = sorted(set(wanted) | set(opts.get("ports") or []))
    proto = str(opts.get("proto", "tcp"))
    every = "others" in expect  # no other port may be open: scan every known one too
    seconds = float(opts.get("timeout") or DEFAULT_SECONDS)
    spoof = ("-S", fresh.address, "-e", fresh.iface) if fresh else ()
    argv = argv_for(ports, proto, seconds, str(job.target), spoof=spoof)
    sent = f"an nmap {proto.upper()} scan of ports {', '.join(map(str, ports))}" + (
        ", then of every port nmap knows a service for (8,366), and real connections to every "
        "port the target's rules and sockets name" if every else "")
    source = f"{job.source} ({spoof[1] if spoof else job.source_address}" + (
        ", an address picked for this scan)" if spoof else ")")
    target = (f"{job.target_name} = {job.target}" if job.target_name != job.target
              else str(job.target))
    found = _scan(job, argv, sent, fresh)
    missing = [p for p in ports if p not in found]
    if missing:
        raise CannotObserve(f"nmap's report names no state for port(s) "
                            f"{', '.join(map(str, missing))} (the scan did not finish within "
                            "its time)", f"run it by hand on {job.source}: {' '.join(argv)}",
                            sent=sent, data={"ports": found})
    known: dict[int, str] = {}
    if every:
        wait = max(KNOWN_SECONDS, float(opts.get("timeout") or 0))  # 8,366 ports, not a few
        known = _scan(job, argv_for(ports, proto, wait, str(job.target), known=True,
                                      spoof=spoof), sent, fresh)
        node = target_node(job)
        named = named_ports(job.nodes.exec(node, NAMED_PORTS).stdout) if node else []
        # Every port the node's own rules and sockets name (beyond nmap's list, and the ports
        # above too) gets whole connections: a rule can tell nmap's bare SYN (no TCP options,
        # 44 bytes) from a real client's and forward only the latter; these are real clients.
        named = [p for p in named if known.get(p) != "open" and found.get(p) != "open"]
        if named:
            connected = _scan(job, argv_for(named, proto, wait, str(job.target), spoof=spoof,
                                            fast=True, connect=True), sent, fresh)
            for port, state in connected.items():
                if port in found:
                    if state == "open":  # a real client got in where the scan's SYN did not
                        found[port] = "open"
                elif state == "open" or port not in known:
                    known[port] = state
    got = ", ".join(f"{p} {found[p]}" for p in ports)
    wrong = []
    for port, want in wanted.items():
        ok = (any(_is(found[port], v) for v in want.values) != want.negate
              if isinstance(want, Match) else _is(found[port], want))
        if not ok:
            wrong.append(f"port {port}: expected {want}, nmap says {found[port]}")
    seen = "open" if wrong and all("nmap says open" in w for w in wrong) else ""
    if every:
        extra = sorted(p for p, state in known.items() if p not in ports and state == "open")
        shown = extra[:MAX_LISTED]
        more = f" and {len(extra) - len(shown)} more" if len(extra) > len(shown) else ""
        got += (f"; also open: {', '.join(map(str, shown))}{more}" if extra
                else "; no other known port open")
        if extra:
            wrong.append(f"port{'s' if len(extra) > 1 else ''} {', '.join(map(str, shown))}"
                         f"{more} open too, and only the ports named should be: each open "
                         "port is a way in from here")
            seen = "open"
    found = {**known, **found}
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
                             "ipv6": bool, "fresh_source": bool},
                    expects={"ports": PortStates(NMAP_STATES), "others": ("not-open",)},
                    needs_port=False,
                    validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=())
