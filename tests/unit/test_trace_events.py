"""portlab.trace.events on real lines: tcpdump's and conntrack's, as they printed them on a
forwarding lab's router (tests/unit/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portlab.trace import events as ev
from portlab.views import trace as view

DATA = Path(__file__).parent / "data"
TCPDUMP = (DATA / "tcpdump-forwarding.txt").read_text().splitlines()
CONNTRACK = (DATA / "conntrack.txt").read_text().splitlines()
LINKS = {"wan": "router.wan", "lan": "router.lan"}


def packets() -> list[ev.Packet]:
    return [p for p in (ev.packet(line, "router", LINKS) for line in TCPDUMP) if p is not None]


def test_lines_that_are_not_ip_packets_give_no_event() -> None:
    six = [line for line in TCPDUMP if " IP6 " in line]
    assert six and all(ev.packet(line, "router") is not None for line in six)
    others = [line for line in TCPDUMP if " IP " not in line and " IP6 " not in line]
    assert others, "the data holds ARP lines"
    assert [ev.packet(line, "router") for line in others] == [None] * len(others)
    for line in ("", "listening on any, link-type LINUX_SLL2", "30 packets captured", "garbage"):
        assert ev.packet(line, "router") is None
        assert ev.connection(line, "router") is None


def test_a_forwarded_syn_is_seen_twice_with_its_interfaces_and_directions() -> None:
    syns = [p for p in packets() if p.flags == "S"]
    assert [(p.iface, p.direction, p.link) for p in syns] == [
        ("wan", "in", "router.wan"), ("lan", "out", "router.lan")]
    outside, inside = syns
    assert str(outside.flow) == "198.51.100.10:54668 → 198.51.100.1:25565"
    assert str(inside.flow) == "198.51.100.10:54668 → 10.0.0.10:25565"
    assert outside.what == "opens a connection (SYN)"
    assert outside.text() == ("wan   in  TCP  198.51.100.10:54668 → 198.51.100.1:25565  "
                              "opens a connection (SYN)")


@pytest.mark.parametrize(("flags", "length", "words"), [
    ("S", 0, "opens a connection (SYN)"), ("S.", 0, "accepts the connection (SYN-ACK)"),
    ("R.", 0, "refused or reset (RST)"), ("R", 0, "refused or reset (RST)"),
    ("F.", 0, "closes its side (FIN)"), ("P.", 16, "data, 16 bytes"),
    (".", 0, "acknowledges (ACK)")])
def test_tcp_flags_in_words(flags: str, length: int, words: str) -> None:
    assert ev.tcp_words(flags, length) == words


def test_icmp_and_udp_in_words() -> None:
    found = {p.what for p in packets() if p.proto in ("icmp", "udp")}
    assert found == {"ping (ICMP echo request)",
                     "looks for a router (ICMPv6 router solicitation)",
                     "UDP port 5353 is closed (ICMP port unreachable)",
                     "refused by a firewall (ICMP administratively prohibited)",
                     "datagram, 96 bytes"}
    udp = next(p for p in packets() if p.proto == "udp")
    assert (udp.flow.dport, udp.length, udp.link) == (51820, 96, "")  # cafe: not in LINKS


def test_a_port_forward_is_a_dnat_pair_of_outside_and_inside() -> None:
    new = ev.connection(CONNTRACK[0], "router")
    assert new is not None and (new.event, new.proto, new.state) == ("new", "tcp", "SYN_SENT")
    assert new.nat == "dnat"
    assert str(new.original) == "198.51.100.10:54668 → 198.51.100.1:25565"
    assert str(new.translated) == "198.51.100.10:54668 → 10.0.0.10:25565"
    assert new.text() == ("NAT  TCP 198.51.100.10:54668 → 198.51.100.1:25565 becomes → "
                          "10.0.0.10:25565  (destination rewritten)")


def test_masquerade_is_snat_and_a_refused_connection_is_not_translated() -> None:
    gone = ev.connection(CONNTRACK[1], "router")
    assert gone is not None and (gone.event, gone.nat) == ("destroy", "")
    assert gone.text() == "TCP connection 198.51.100.10:54570 → 198.51.100.1:8080 ends"
    masq = ev.connection(CONNTRACK[2], "router")
    assert masq is not None and masq.nat == "snat"
    assert masq.text() == ("NAT  UDP 10.0.0.10:40000 → 198.51.100.10:53 becomes "
                           "198.51.100.1:40000 → 198.51.100.10:53  (source rewritten: "
                           "masquerade)")  # the whole connection: no arrow left dangling
    ping = ev.connection(CONNTRACK[3], "router")
    assert ping is not None and ping.proto == "icmp" and ping.nat == "snat"
    assert (ping.original.sport, ping.translated.src) == (None, "198.51.100.1")


def test_json_events_carry_what_the_live_page_needs() -> None:
    syn = next(p for p in packets() if p.flags == "S")
    data = json.loads(view.json_line(syn))
    assert {k: data[k] for k in ("type", "node", "iface", "link", "direction", "proto", "src",
                                 "sport", "dst", "dport", "flags")} == {
        "type": "packet", "node": "router", "iface": "wan", "link": "router.wan",
        "direction": "in", "proto": "tcp", "src": "198.51.100.10", "sport": 54668,
        "dst": "198.51.100.1", "dport": 25565, "flags": "S"}
    nat = json.loads(view.json_line(ev.connection(CONNTRACK[0], "router")))  # type: ignore[arg-type]
    assert (nat["type"], nat["nat"], nat["translated"]["dst"]) == ("connection", "dnat",
                                                                   "10.0.0.10")


def test_several_nodes_are_labelled() -> None:
    syn = next(p for p in packets() if p.flags == "S")
    assert view.line(syn, label=True, width=8).startswith("router    wan   in  TCP")
    assert view.line(syn, label=False).startswith("wan   in")
