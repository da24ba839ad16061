"""A classic pcap file read into packet summaries: IPv4 and IPv6, ports, TCP flags, sizes."""

from __future__ import annotations

import socket
import struct

LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW = 1, 113, 276, 101
IP_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmp6"}


def read_pcap(data: bytes) -> tuple[list[dict], int]:
    """The IPv4 and IPv6 packets of a classic pcap file, summarised (no payload bytes)."""
    if len(data) < 24:
        return [], 0
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise OSError("not a pcap file")
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    out: list[dict] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _origlen = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        summary = parse_frame(frame, linktype)
        if summary is not None:
            summary["time"] = round(sec + frac / (1e9 if nanos else 1e6), 6)
            out.append(summary)
    return out, linktype


def _u16(data: bytes, at: int) -> int:
    return int(struct.unpack(">H", data[at:at + 2])[0]) if len(data) >= at + 2 else 0


def parse_frame(frame: bytes, linktype: int) -> dict | None:
    """One captured frame as {src, dst, proto, sport, dport, flags, payload, length}."""
    if linktype == LINKTYPE_ETHERNET:
        ethertype, offset = _u16(frame, 12), 14
        while ethertype in (0x8100, 0x88A8):  # VLAN tags
            ethertype, offset = _u16(frame, offset + 2), offset + 4
    elif linktype == LINKTYPE_LINUX_SLL:  # tcpdump -i any, older libpcap
        ethertype, offset = _u16(frame, 14), 16
    elif linktype == LINKTYPE_LINUX_SLL2:  # tcpdump -i any, libpcap 1.10+
        ethertype, offset = _u16(frame, 0), 20
    elif linktype == LINKTYPE_RAW:  # tun devices, e.g. wireguard-go's wg0
        ethertype, offset = 0x0800, 0
    else:
        return None
    ip = frame[offset:]
    if linktype == LINKTYPE_RAW and ip[:1] and ip[0] >> 4 == 6:
        ethertype = 0x86DD
    if ethertype == 0x86DD:
        return _ipv6_packet(ip)
    if ethertype != 0x0800:
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    proto = ip[9]
    pkt: dict = {"src": socket.inet_ntoa(ip[12:16]), "dst": socket.inet_ntoa(ip[16:20]),
                 "proto": IP_PROTOCOLS.get(proto, str(proto)), "length": total}
    if struct.unpack(">H", ip[6:8])[0] & 0x1FFF:
        pkt["fragment"] = True
    else:
        _transport(pkt, proto, ip[ihl:], total - ihl)
    return pkt


def _ipv6_packet(ip: bytes) -> dict | None:
    """An IPv6 packet: its fixed 40-byte header, then TCP, UDP or ICMPv6 straight after (a
    packet with extension headers is told by its next header's number alone)."""
    if len(ip) < 40 or ip[0] >> 4 != 6:
        return None
    payload = struct.unpack(">H", ip[4:6])[0]
    proto = ip[6]
    pkt: dict = {"src": socket.inet_ntop(socket.AF_INET6, ip[8:24]),
                 "dst": socket.inet_ntop(socket.AF_INET6, ip[24:40]),
                 "proto": IP_PROTOCOLS.get(proto, str(proto)), "length": 40 + payload}
    _transport(pkt, proto, ip[40:], payload)
    return pkt


def _transport(pkt: dict, proto: int, l4: bytes, size: int) -> None:
    """Ports, TCP flags and payload size (of `size` bytes after the IP header), or the ICMP
    type and code, into `pkt`."""
    if proto in (6, 17) and len(l4) >= 4:
        pkt["sport"], pkt["dport"] = struct.unpack(">HH", l4[:4])
        if proto == 6 and len(l4) >= 14:
            header = (l4[12] >> 4) * 4
            flags = l4[13]
            pkt["flags"] = "".join(name for bit, name in ((2, "S"), (16, "A"), (1, "F"),
                                                          (4, "R"), (8, "P")) if flags & bit)
            pkt["payload"] = max(0, size - header)
        elif proto == 17:
            pkt["payload"] = max(0, size - 8)
    elif proto in (1, 58) and len(l4) >= 2:
        pkt["icmp_type"], pkt["icmp_code"] = l4[0], l4[1]
