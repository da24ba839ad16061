"""Turn the real tools' lines into events, and events into words.

Two tools run on a traced node (portlab.trace.live):

* `tcpdump -i any -nn -l -tt` prints one line per packet, with the
  interface and its direction:
  `1796182120.134272 wan   In  IP 198.51.100.10.54668 > 198.51.100.1.25565: Flags [S], ...`
* `conntrack -E -o timestamp` (on a node that forwards) prints one line per
  connection event, with the connection as it came in (the original
  direction) and as the answers will look (the reply direction). When the
  two do not mirror each other, the node translated it (NAT):
  `[1796182120.134820]  [NEW] tcp 6 120 SYN_SENT src=A dst=B sport=P dport=Q
  [UNREPLIED] src=C dst=A sport=Q dport=P` is a DNAT of B:Q to C:Q.

Lines that are neither (tcpdump's banner, IPv6 neighbour chatter the default
filter keeps out anyway) give no event.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

ARROW = "→"

_PACKET = re.compile(
    r"^(?P<time>\d+\.\d+)\s+(?P<iface>\S+)\s+(?P<dir>In|Out|M|B|P|U)\s+(?:IP\s+"
    r"(?P<src>\d+\.\d+\.\d+\.\d+)(?:\.(?P<sport>\d+))?\s+>\s+"
    r"(?P<dst>\d+\.\d+\.\d+\.\d+)(?:\.(?P<dport>\d+))?"
    # IPv6: `IP6 2001:db8:1::a.54668 > 2001:db8:ff::64.80: ...` (the port after a dot)
    r"|IP6\s+(?P<src6>[0-9a-fA-F:]+)(?:\.(?P<sport6>\d+))?\s+>\s+"
    r"(?P<dst6>[0-9a-fA-F:]+)(?:\.(?P<dport6>\d+))?):\s*(?P<rest>.*)$")
_FLAGS = re.compile(r"Flags \[(?P<flags>[^\]]*)\]")
_LENGTH = re.compile(r"length (\d+)")
_CONN = re.compile(r"^\[(?P<time>\d+\.\d+)\]\s+\[(?P<event>NEW|UPDATE|DESTROY)\]\s+"
                   r"(?P<proto>[a-z0-9]+)\s+(?P<rest>.*)$")
DIRECTIONS = {"In": "in", "Out": "out", "M": "multicast", "B": "broadcast", "P": "in",
              "U": "in"}


@dataclass(frozen=True)
class Flow:
    """One direction of a connection: who sends to whom."""

    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None

    def source(self) -> str:
        return _at(self.src, self.sport)

    def destination(self) -> str:
        return _at(self.dst, self.dport)

    def __str__(self) -> str:
        return f"{self.source()} {ARROW} {self.destination()}"


@dataclass(frozen=True)
class Packet:
    """One packet a node's interface saw (tcpdump)."""

    time: float
    node: str
    iface: str
    direction: str  # in | out | multicast | broadcast
    proto: str  # tcp | udp | icmp | ip
    flow: Flow
    flags: str  # tcpdump's TCP flags ("S", "S.", "R.", "P.", ...), "" for others
    length: int  # payload bytes
    what: str  # in words: "opens a connection (SYN)"
    link: str = ""  # "node.iface" when the interface is one of the lab's

    type = "packet"

    def text(self) -> str:
        return (f"{self.iface:<5} {self.direction:<3} {self.proto.upper():<4} "
                f"{self.flow}  {self.what}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        flow = data.pop("flow")
        return {"type": self.type, **data, **flow, "text": self.text()}


@dataclass(frozen=True)
class Connection:
    """A connection a node's connection tracking began or ended (conntrack)."""

    time: float
    node: str
    event: str  # new | update | destroy
    proto: str
    original: Flow  # as it arrived
    reply: Flow  # what the answers look like
    state: str  # TCP's state ("SYN_SENT"), "" for others

    type = "connection"

    @property
    def nat(self) -> str:
        """"dnat" (the destination was rewritten: a port forward), "snat" (the source:
        masquerade), "both", or "" (no translation)."""
        d = (self.reply.src, self.reply.sport) != (self.original.dst, self.original.dport)
        s = (self.reply.dst, self.reply.dport) != (self.original.src, self.original.sport)
        return "both" if d and s else "dnat" if d else "snat" if s else ""

    @property
    def translated(self) -> Flow:
        """The connection as it leaves the node: the reply direction, turned around."""
        return Flow(self.reply.dst, self.reply.src, self.reply.dport, self.reply.sport)

    def text(self) -> str:
        o, t = self.original, self.translated
        proto = self.proto.upper()
        if self.event == "destroy":
            return f"{proto} connection {o} ends"
        if self.event == "update":
            return f"{proto} connection {o} is now {self.state or 'updated'}"
        if self.nat == "dnat":
            return f"NAT  {proto} {o} becomes {ARROW} {t.destination()}  (destination rewritten)"
        if self.nat == "snat":
            return f"NAT  {proto} {o} becomes {t}  (source rewritten: masquerade)"
        if self.nat == "both":
            return f"NAT  {proto} {o} becomes {t}  (source and destination rewritten)"
        return f"new {proto} connection {o} (not translated)"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "time": self.time, "node": self.node, "event": self.event,
                "proto": self.proto, "state": self.state, "nat": self.nat,
                "original": asdict(self.original), "reply": asdict(self.reply),
                "translated": asdict(self.translated), "text": self.text()}


Event = Packet | Connection


def _at(addr: str, port: int | None) -> str:
    if port is None:
        return addr
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def tcp_words(flags: str, length: int) -> str:
    if "R" in flags:
        return "refused or reset (RST)"
    if "S" in flags:
        return "accepts the connection (SYN-ACK)" if "." in flags else "opens a connection (SYN)"
    if "F" in flags:
        return "closes its side (FIN)"
    if length > 0:
        return f"data, {length} bytes"
    return "acknowledges (ACK)"


def icmp_words(rest: str) -> str:
    body = re.sub(r"^ICMP6?,?\s+", "", rest)  # tcpdump: "ICMP echo ...", "ICMP6, echo ..."
    body = re.sub(r",\s*length \d+$", "", body)
    ndp = re.match(r"(router|neighbor) (solicitation|advertisement)(?:, (?:who has|tgt is) "
                   r"([0-9a-f:]+))?", body)
    if ndp:  # IPv6's ARP, and how routers announce themselves
        kind, what, who = ndp.groups()
        name = f"ICMPv6 {'neighbour' if kind == 'neighbor' else kind} {what}"
        if kind == "neighbor":
            return f"who has {who}? ({name})" if what == "solicitation" else \
                f"{who} is here ({name})"
        return f"looks for a router ({name})" if what == "solicitation" else \
            f"a router announces itself ({name})"
    if body.startswith("echo request"):
        return "ping (ICMP echo request)"
    if body.startswith("echo reply"):
        return "ping answer (ICMP echo reply)"
    m = (re.search(r"(tcp|udp) port (\d+) unreachable", body)
         or re.search(r"unreachable port, \S+ (tcp|udp) port (\d+)", body))
    if m:
        return f"{m.group(1).upper()} port {m.group(2)} is closed (ICMP port unreachable)"
    if "prohibited" in body:
        return "refused by a firewall (ICMP administratively prohibited)"
    if "unreachable" in body:
        return f"cannot be delivered (ICMP: {body})"
    return f"ICMP: {body}"


def packet(line: str, node: str, links: dict[str, str] | None = None) -> Packet | None:
    """The packet a tcpdump line describes, or None for any other line."""
    m = _PACKET.match(line.strip())
    if not m:
        return None
    rest = m.group("rest")
    lengths = _LENGTH.findall(rest)
    length = int(lengths[-1]) if lengths else 0
    src, dst = m.group("src") or m.group("src6"), m.group("dst") or m.group("dst6")
    sport = m.group("sport") or m.group("sport6")
    dport = m.group("dport") or m.group("dport6")
    sport = int(sport) if sport else None
    dport = int(dport) if dport else None
    flags = ""
    if rest.startswith("ICMP"):
        proto, what = "icmp", icmp_words(rest)
    elif (f := _FLAGS.search(rest)) is not None and sport is not None:
        proto, flags = "tcp", f.group("flags")
        what = tcp_words(flags, length)
    elif sport is not None:
        proto, what = "udp", f"datagram, {length} bytes"
    else:
        proto, what = "ip", rest[:60]
    iface = m.group("iface")
    return Packet(float(m.group("time")), node, iface, DIRECTIONS[m.group("dir")], proto,
                  Flow(src, dst, sport, dport), flags, length, what,
                  (links or {}).get(iface, ""))


def connection(line: str, node: str) -> Connection | None:
    """The connection event a `conntrack -E -o timestamp` line describes, or None."""
    m = _CONN.match(line.strip())
    if not m:
        return None
    flows: list[dict[str, str]] = []
    state = ""
    for token in m.group("rest").split():
        if "=" in token:
            key, _, value = token.partition("=")
            if key == "src":
                flows.append({})
            if flows and key in ("src", "dst", "sport", "dport") and key not in flows[-1]:
                flows[-1][key] = value
        elif re.fullmatch(r"[A-Z_]{3,}", token) and not flows:
            state = token
    if len(flows) < 2 or any("src" not in f or "dst" not in f for f in flows[:2]):
        return None

    def flow(f: dict[str, str]) -> Flow:
        return Flow(f["src"], f["dst"], int(f["sport"]) if "sport" in f else None,
                    int(f["dport"]) if "dport" in f else None)

    return Connection(float(m.group("time")), node, m.group("event").lower(), m.group("proto"),
                      flow(flows[0]), flow(flows[1]), state)
