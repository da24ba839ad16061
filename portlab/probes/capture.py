"""capture: what a node on the path sees while a request runs (tcpdump there, then analysed).

The probe starts a capture on node `at` (interface `iface`), sends from
`from` to `to`:`port`, with a source port of its own choosing, one HTTP GET
(`send: http`, the default), a TCP connection (`send: tcp`, reading the
server's greeting) or one UDP datagram (`send: udp`), stops the capture and
looks at what crossed `at`:

* `in_clear`: were packets of that very request (its TCP connection or UDP
  datagram, known by its source port and the target port) visible at `at`?
  A VPN hides them inside encrypted UDP; a plain route does not.
* `handshake` (TCP): did the connection's opening cross `at`, its SYN and
  the SYN-ACK that accepts it? `false` holds when no SYN-ACK crossed: a
  firewall dropped the SYN, or a reset refused it.
* `tunnel` (+ `tunnel_port`): between the `from` node and that address, did
  only UDP to/from that port cross `at` (and some did)? That is what an
  eavesdropper on the path sees of a WireGuard tunnel: who talks to which
  gateway, how much and when, never what. `tunnel_from` names the tunnel's
  near end when it is not the `from` node: a site-to-site VPN, where the
  `from` node's router wraps its traffic (`tunnel_from: site-a.wan`).

The answer (a portlab-serve server's: for tcp its greeting line) is judged
like the http kind's (answers, token, seen_source). Other checks may run at
the same time; the verdict on the request's own packets is exact because it
recognises them by port, and the `tunnel` verdict only counts traffic
between `from` and the tunnel address.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from portlab.model.probekinds import ANSWER_EXPECTS, PORT, SECONDS, KindSchema
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import Heard, endpoint, judge_answer, tool_on

# Local ports below Linux's ephemeral range (32768-60999), so that no other
# connection of the node picks the same one meanwhile.
SOURCE_PORTS = (20000, 32000)


def _fmt(pkt: dict[str, Any]) -> str:
    src, dst = pkt.get("src", "?"), pkt.get("dst", "?")
    if "sport" in pkt:
        src, dst = (f"[{a}]" if ":" in str(a) else a for a in (src, dst))
        src, dst = f"{src}:{pkt['sport']}", f"{dst}:{pkt['dport']}"
    flags = f" [{pkt['flags']}]" if pkt.get("flags") else ""
    return f"{str(pkt.get('proto', '?')).upper()} {src} -> {dst}{flags}"


def _own(pkt: dict[str, Any], source_port: int, port: int, proto: str = "tcp") -> bool:
    """A packet of the probe's own connection or datagram (either direction, before or after
    NAT)."""
    if pkt.get("proto") != proto:
        return False
    ports = {pkt.get("sport"), pkt.get("dport")}
    return ports == {source_port, port}


def _handshake(own: list[dict[str, Any]]) -> bool:
    """Did the opening of a TCP connection cross: a SYN, and the SYN-ACK that accepts it?"""
    flags = [str(p.get("flags", "")) for p in own]
    return any("S" in f and "A" not in f for f in flags) and any("S" in f and "A" in f
                                                                 for f in flags)


def _heard(send: str, data: dict[str, Any]) -> Heard:
    """What came back to the request, in the terms of judge_answer."""
    state = data.get("state")
    answered = {"http": state == "open" and isinstance(data.get("status"), int),
                "tcp": state == "open",  # the connection was accepted: TCP's answer
                "udp": state == "answered"}[send]
    answer = data.get("answer") if answered else None
    return Heard(answered, answer if isinstance(answer, dict) else None)


def summarise(packets: list[dict[str, Any]]) -> str:
    flows = Counter(_fmt({k: v for k, v in p.items() if k != "flags"}) for p in packets)
    shown = [f"{n} x {flow}" if n > 1 else flow for flow, n in flows.most_common(6)]
    more = len(flows) - len(shown)
    return "; ".join(shown) + (f"; and {more} other flows" if more > 0 else "")


def _valid(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    if "at" not in options:
        return "a capture probe needs 'at': the node where the capture runs"
    if ("tunnel" in expect) != ("tunnel_port" in expect):
        return "expect.tunnel and expect.tunnel_port go together (address and UDP port)"
    if "tunnel_from" in expect and "tunnel" not in expect:
        return "expect.tunnel_from (the tunnel's near end) goes with expect.tunnel"
    send = options.get("send", "http")
    if "handshake" in expect and send == "udp":
        return "expect.handshake is TCP's: UDP has no handshake (send: tcp or http)"
    if "path" in options and send != "http":
        return "'path' goes with send: http"
    return None


def run(job: ProbeRun) -> ProbeResult:
    opts = job.probe.options
    expect = job.probe.expect
    at = str(opts["at"])
    iface = str(opts.get("iface", "any"))
    path = str(opts.get("path", "/"))
    send = str(opts.get("send", "http"))
    proto = "udp" if send == "udp" else "tcp"
    port = int(job.probe.port or 80)
    source_port = random.randint(*SOURCE_PORTS)
    where = f"{at} ({iface})"
    what = {"http": f"HTTP GET {path}", "tcp": "a TCP connection",
            "udp": "one UDP datagram"}[send]
    sent = f"{what} from local port {source_port}, while {at} captured its interface {iface}"

    started = tool_on(job, at, ["capture", "start", iface])
    if started.get("state") != "capturing" or not started.get("id"):
        raise CannotObserve(f"the capture on {where} did not start: {str(started)[:200]}",
                            f"`portlab-probe capture start {iface}` on {at} shows why",
                            sent=sent, data={"capture": started})
    argv = [send, str(job.target), str(port), "--source-port", str(source_port)]
    argv += {"http": ["--path", path], "tcp": ["--banner"], "udp": []}[send]
    if opts.get("timeout"):
        argv += ["--timeout", str(opts["timeout"])]
    try:
        data = tool_on(job, job.source, argv)
    finally:
        stopped = tool_on(job, at, ["capture", "stop", str(started["id"])])
    source = f"{job.source} ({job.source_address}:{source_port})"
    if stopped.get("state") != "captured":
        raise CannotObserve(f"the capture on {where} did not end with its packets: "
                            f"{str(stopped)[:200]}", "run `portlab check` again", sent=sent,
                            data={"request": data, "capture": stopped})
    lost = (stopped.get("tcpdump") or {}).get("dropped_by_kernel", 0)
    if lost or stopped.get("truncated") or not isinstance(stopped.get("packets"), list):
        what = (f"the kernel dropped {lost} packets before tcpdump saw them" if lost else
                "the capture held more packets than it reports")
        raise CannotObserve(f"the capture on {where} is incomplete ({what}), so what crossed "
                            f"{at} cannot be told", "run `portlab check` again", sent=sent,
                            data={"request": data, "capture": stopped})
    packets: list[dict[str, Any]] = stopped.get("packets") or []

    outcome, got, why, judged = judge_answer(job, data, _heard(send, data),
                                             {"http": "HTTP", "tcp": "TCP", "udp": "UDP"}[send])
    passed = outcome is Outcome.PASS

    own = [p for p in packets if _own(p, source_port, port, proto)]
    shook = _handshake(own)
    # The tunnel's near end: the `from` node itself, or (`tunnel_from`) a router between it and
    # the capture, as in a site-to-site VPN whose two gateways carry the LANs' traffic.
    near_ref = expect.get("tunnel_from")
    me = job.address_of(str(near_ref)) if near_ref else job.source_address
    near = f"{near_ref} = {me}" if near_ref else job.source
    tunnel_ref = expect.get("tunnel")
    tunnel_ip = job.address_of(str(tunnel_ref)) if tunnel_ref else None
    tunnel_port = expect.get("tunnel_port")
    between = [p for p in packets if tunnel_ip and {p.get("src"), p.get("dst")} == {me, tunnel_ip}]
    # UDP whose port on the tunnel address's side is the tunnel's port
    wrapped = [p for p in between if p.get("proto") == "udp" and tunnel_port ==
               (p.get("dport") if p.get("dst") == tunnel_ip else p.get("sport"))]
    other = [p for p in between if p not in wrapped]

    seen = f"{len(packets)} packets crossed {where}"
    if packets:
        seen += " (with those of checks running meanwhile): " + summarise(packets)
    kind = proto.upper()
    if own:
        seen += f". {len(own)} of them were the request's own {kind} packets, readable there"
        if proto == "tcp":
            seen += (", the handshake among them (SYN, SYN-ACK)" if shook else
                     ", without the handshake's SYN-ACK")
    else:
        seen += f". None of them was one of the request's own {kind} packets"
    got = f"{got}. {seen}"

    # What was seen on the path comes first: a request that leaked in the clear is the
    # finding, whether or not it was answered.
    want_clear = expect.get("in_clear")
    if want_clear is False and own:
        passed, why, judged = False, (f"the request crossed {at} in the clear ({_fmt(own[0])}): "
                                      f"anyone there can read it; it should travel inside the "
                                      "tunnel"), "in-clear"
    elif passed and want_clear is True and not own:
        passed, why = False, f"the request's packets were not visible at {at}"
    elif passed and expect.get("handshake") is True and not shook:
        passed, why = False, (f"no TCP handshake (SYN, then SYN-ACK) of the connection crossed "
                              f"{at}")
    elif expect.get("handshake") is False and shook:
        passed, why = False, (f"the connection's handshake crossed {at} (SYN, SYN-ACK): it was "
                              "accepted, and it should not have been")
    elif passed and tunnel_ref:
        if other:
            passed, why = False, (f"between {near} and {tunnel_ref} = {tunnel_ip} more than "
                                  f"UDP port {tunnel_port} crossed {at}: {_fmt(other[0])}")
        elif not wrapped:
            passed, why = False, (f"no UDP to {tunnel_ref} = {tunnel_ip}:{tunnel_port} crossed "
                                  f"{at} while the request ran: it did not go through the tunnel")
    return ProbeResult(Outcome.of(passed), sent, source, endpoint(job), got, why,
                       {"request": data, "capture": {k: v for k, v in stopped.items()
                                                     if k != "packets"},
                        "packets": packets[:200]}, seen=judged if outcome is Outcome.FAIL
                       or judged == "in-clear" else "")


SCHEMA = KindSchema("capture",
                    "Capture on a node of the path while an HTTP request, a TCP connection or "
                    "a UDP datagram goes by: what could be seen there, and did a TCP "
                    "handshake cross it?",
                    options={"at": str, "iface": str, "path": str, "timeout": SECONDS,
                             "send": ("http", "tcp", "udp"), "ipv6": bool},
                    expects={**ANSWER_EXPECTS, "in_clear": bool, "tunnel": str,
                             "tunnel_port": PORT, "tunnel_from": str, "handshake": bool},
                    interfaces={"iface": "at"}, also=("any",), validate=_valid)
KIND = ProbeKind(SCHEMA, run, node=("tcpdump.py", "pcap.py", "sockets.py"))
