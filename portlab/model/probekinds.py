"""The probe kinds of the lab format: which keys a probe of each kind takes, and their types.

This is the format's side of a kind (what a lab file may write); what a kind
does with real traffic is in `portlab.probes.<kind>`. The two registries name
the same kinds (a unit test holds them to it). docs/probe-kinds.md documents
every kind for lab authors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portlab.model.types import Range  # a whole number from low to high


@dataclass(frozen=True)
class OneOf:
    """An expectation of type `base`, or a portlab.model.types.Match of such values:
    `{any: [A, B]}` (one of them), `{not: A}` or `{not: [A, B]}` (none of them)."""

    base: Any


@dataclass(frozen=True)
class PortList:
    """A list of ports (each a number or a template over params)."""


@dataclass(frozen=True)
class PortStates:
    """A mapping of port -> the state expected there (one of `states`, or a Match of them)."""

    states: tuple[str, ...]


SECONDS = float  # a number of seconds, more than 0 and at most 60
PORT = Range(1, 65535)
COUNT = Range(0, 10**6)

# Where an interface option's name is looked up: on the probe's own node ("from"), on the
# node another option names ("at"), or nowhere (an interface made at run time, like wg0).
FROM = "from"


@dataclass(frozen=True)
class KindSchema:
    kind: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)  # key -> type (see checkspec.typed)
    expects: dict[str, Any] = field(default_factory=dict)
    needs_target: bool = True
    needs_port: bool = True
    # option -> where the interface it names must exist: FROM, another option's node ("at"),
    # or None (only the name's form is checked: it is made at run time)
    interfaces: dict[str, str | None] = field(default_factory=dict)
    also: tuple[str, ...] = ()  # interface names valid beyond the node's own (e.g. "any")
    validate: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None


# expect keys shared by the kinds that talk to portlab-serve servers (probes.common.judge_answer):
# answers (anything came back), token (a genuine answer of this instance's servers, its proof
# checked), served_by (the node(s) whose server must answer; default: the node `to:` names),
# seen_source (the client address the server saw), proxied (a proxy in between is right: the
# server's connection need not be the probe's own)
ANSWER_EXPECTS: dict[str, Any] = {"answers": bool, "token": bool, "seen_source": OneOf(str),
                                  "served_by": OneOf(str), "proxied": bool}

TCP_STATES = ("open", "closed", "filtered", "unreachable", "not-open", "closed-or-filtered")
# UDP in a scanner's words: a datagram no one answers may have reached a silent server or been
# dropped by a firewall, and nothing on the wire tells which: "open|filtered".
UDP_STATES = ("open", "closed", "open|filtered", "unreachable", "not-open")


def _tcp(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    if "state" not in expect and "banner" not in expect and not \
            any(k in expect for k in ANSWER_EXPECTS):
        return ("a tcp probe needs expect.state, expect.banner, or what the server's greeting "
                "should say (token, served_by, seen_source)")
    return None


# nmap's words for a port, and "not-open" (anything but open)
NMAP_STATES = ("open", "closed", "filtered", "open|filtered", "closed|filtered", "unfiltered",
               "not-open")


# A Host header a lab may send: a host name (or address), perhaps a port; never a second header.
HOST_HEADER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")


def _http(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    host = options.get("host_header")
    if isinstance(host, str) and "{" not in host and not HOST_HEADER.match(host):
        return (f"host_header {host!r} is not a host name (letters, digits, dots and dashes, "
                "perhaps :PORT)")
    return None


def _scan(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
    if not expect.get("ports"):
        return "a scan probe needs expect.ports: the state expected on each port"
    return None


def _capture(options: dict[str, Any], expect: dict[str, Any]) -> str | None:
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


# ipv6: `to:` (and `seen_source:`) name an interface's IPv6 address, and the probe goes by IPv6;
# via: a gateway on the same link (node.iface) the probe's packets go to, whatever the node's
# routes say (what a neighbour can do: a router must not pass such packets where they should
# not go)
_SENDS = {"timeout": SECONDS, "device": str, "source_port": PORT, "ipv6": bool, "via": str}
_DEVICE: dict[str, str | None] = {"device": FROM}

KINDS: dict[str, KindSchema] = {k.kind: k for k in (
    KindSchema("tcp", "TCP connect: is the port open, closed or filtered from this node?",
               options=_SENDS, expects={"state": OneOf(TCP_STATES), "banner": str,
                                        **ANSWER_EXPECTS},
               interfaces=_DEVICE, validate=_tcp),
    KindSchema("http", "HTTP GET: does the web server answer, and whom did it see?",
               options={"path": str, "host_header": str, **_SENDS},
               expects={**ANSWER_EXPECTS, "status": Range(100, 599), "contains": str},
               interfaces=_DEVICE, validate=_http),
    KindSchema("minecraft",
               "Minecraft Server List Ping: does a game server answer, and whom did it see?",
               options=_SENDS, expects=ANSWER_EXPECTS, interfaces=_DEVICE),
    KindSchema("udp", "UDP datagram: does the server reply, and whom did it see? Or the port's "
               "state in a scanner's words (open, closed, open|filtered)",
               options={"payload": str, **_SENDS}, expects={**ANSWER_EXPECTS,
                                                           "state": OneOf(UDP_STATES)},
               interfaces=_DEVICE),
    KindSchema("listening",
               "Which process listens on this node's own port (from its sockets, no traffic)",
               options={"proto": ("tcp", "udp")}, expects={"listening": bool, "process": str,
                                                       "user": str},
               needs_target=False),
    KindSchema("capture",
               "Capture on a node of the path while an HTTP request, a TCP connection or a UDP "
               "datagram goes by: what could be seen there, and did a TCP handshake cross it?",
               options={"at": str, "iface": str, "path": str, "timeout": SECONDS,
                        "send": ("http", "tcp", "udp"), "ipv6": bool},
               expects={**ANSWER_EXPECTS, "in_clear": bool, "tunnel": str, "tunnel_port": PORT,
                        "tunnel_from": str, "handshake": bool},
               interfaces={"iface": "at"}, also=("any",), validate=_capture),
    KindSchema("scan",
               "nmap from a node at one address (never a subnet): several ports, each in "
               "nmap's words (open, closed, filtered, open|filtered)",
               options={"ports": PortList(), "proto": ("tcp", "udp"), "timeout": SECONDS,
                        "ipv6": bool},
               expects={"ports": PortStates(NMAP_STATES)}, needs_port=False, validate=_scan),
    KindSchema("wireguard",
               "A node's WireGuard peers (wg show): a recent handshake, from whom, for which "
               "address",
               options={"iface": str},
               expects={"peer": str, "allowed_ip": str, "handshake_within": COUNT},
               needs_target=False, needs_port=False, interfaces={"iface": None}),
)}


def schema(kind: str) -> KindSchema | None:
    return KINDS.get(kind)


def kinds() -> list[str]:
    return sorted(KINDS)
