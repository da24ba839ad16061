"""What a node sends with a raw socket (AF_PACKET), whatever its own IP stack allows: the frames
of test_isolation's raw-frame test. This file runs on a lab node (python3 -c, standard library
only), as root with NET_RAW, as a submission could.

    python3 rawframes.py IFACE TARGETS_JSON PORT

TARGETS_JSON: {"macs": [dst MACs], "ipv4": [addresses], "ipv6": [addresses],
"own": [MACs whose frames count as answers], "wait": seconds}. To every MAC it sends, for
every IPv4 address, an ARP request, an ICMP echo, a UDP datagram and a TCP SYN to PORT; and for
every IPv6 address an ICMPv6 echo, a neighbour solicitation, a UDP datagram and a TCP SYN (to
an address's own solicited-node group for the solicitation). Then it listens for `wait` seconds
and prints, as JSON, what came back: every frame whose source MAC is one of `own`, and every
ARP reply, ICMP or ICMPv6 echo reply, TCP SYN-ACK or RST and neighbour advertisement from one
of the addresses. A bounded count: len(macs) * (4 * len(ipv4) + 4 * len(ipv6)) frames.
"""

import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src, dst, proto, payload):
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def l4_sum(pseudo, segment):
    return checksum(pseudo + segment)


def udp4(src, dst, sport, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(seg))
    return seg[:6] + struct.pack("!H", l4_sum(pseudo, seg)) + seg[8:]


def tcp_syn(sport, dport):
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)


def tcp4(src, dst, sport, dport):
    seg = tcp_syn(sport, dport)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    return seg[:16] + struct.pack("!H", l4_sum(pseudo, seg)) + seg[18:]


def icmp_echo(kind):
    msg = struct.pack("!BBHHH", kind, 0, 0, 0x77, 1) + b"portlab-raw"
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def ipv6(src, dst, nh, payload, hops=255):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hops,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + payload


def six_sum(src, dst, nh, seg):
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!IxxxB", len(seg), nh))
    return checksum(pseudo + seg)


def with_sum(seg, offset, value):
    return seg[:offset] + struct.pack("!H", value) + seg[offset + 2:]


def frames(my_mac, my4, my6, macs, v4, v6, port):
    out = []
    for mac in macs:
        dst = mac_bytes(mac)
        eth4 = dst + my_mac + b"\x08\x00"
        eth6 = dst + my_mac + b"\x86\xdd"
        for addr in v4:
            arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, my_mac,
                              socket.inet_aton(my4), b"\0" * 6, socket.inet_aton(addr))
            out.append(dst + my_mac + b"\x08\x06" + arp)
            out.append(eth4 + ipv4(my4, addr, 1, icmp_echo(8)))
            out.append(eth4 + ipv4(my4, addr, 17, udp4(my4, addr, 40001, port, b"portlab-raw")))
            out.append(eth4 + ipv4(my4, addr, 6, tcp4(my4, addr, 40002, port)))
        for addr in v6:
            echo = icmp_echo(128)
            echo = with_sum(echo[:2] + b"\0\0" + echo[4:], 2, six_sum(my6, addr, 58,
                                                                     echo[:2] + b"\0\0" + echo[4:]))
            out.append(eth6 + ipv6(my6, addr, 58, echo))
            target = socket.inet_pton(socket.AF_INET6, addr)
            ns = struct.pack("!BBHI16s", 135, 0, 0, 0, target) + b"\x01\x01" + my_mac
            group = "ff02::1:ff" + target.hex()[26:28] + ":" + target.hex()[28:32]
            out.append(eth6 + ipv6(my6, group, 58, with_sum(ns, 2, six_sum(my6, group, 58, ns))))
            seg = struct.pack("!HHHH", 40003, port, 8 + 11, 0) + b"portlab-raw"
            out.append(eth6 + ipv6(my6, addr, 17, with_sum(seg, 6, six_sum(my6, addr, 17, seg))))
            seg = tcp_syn(40004, port)
            out.append(eth6 + ipv6(my6, addr, 6, with_sum(seg, 16, six_sum(my6, addr, 6, seg))))
    return out


def answers(frame, own, v4, v6):
    """What this frame is, if it answers one of ours (or comes from a MAC of `own`)."""
    src_mac = ":".join(f"{b:02x}" for b in frame[6:12])
    kind = struct.unpack("!H", frame[12:14])[0]
    if src_mac in own:
        return f"a frame from {src_mac} (type {kind:#06x})"
    if kind == 0x0806 and len(frame) >= 42 and frame[20:22] == b"\x00\x02":
        sender = socket.inet_ntoa(frame[28:32])
        if sender in v4:
            return f"an ARP reply for {sender} from {src_mac}"
    if kind == 0x0800 and len(frame) >= 34:
        ip = frame[14:]
        src = socket.inet_ntoa(ip[12:16])
        proto, l4 = ip[9], ip[(ip[0] & 15) * 4:]
        if src in v4:
            if proto == 1 and l4[:1] == b"\x00":
                return f"an ICMP echo reply from {src}"
            if proto == 6 and len(l4) >= 14 and l4[13] & 0x16:
                return f"a TCP answer (flags {l4[13]:#x}) from {src}"
            if proto in (1, 17, 6):
                return f"an IPv4 packet (protocol {proto}) from {src}"
    if kind == 0x86DD and len(frame) >= 54:
        ip = frame[14:]
        src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
        nh, l4 = ip[6], ip[40:]
        if src in v6:
            what = {129: "an ICMPv6 echo reply", 136: "a neighbour advertisement"}.get(
                l4[0] if nh == 58 and l4 else -1, f"an IPv6 packet (next header {nh})")
            return f"{what} from {src}"
    return None


def main():
    iface, spec, port = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    own = {m.lower() for m in spec["own"]}
    v4, v6 = spec["ipv4"], spec["ipv6"]
    with open(f"/sys/class/net/{iface}/address") as fh:
        my_mac = mac_bytes(fh.read().strip())
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    sock.settimeout(0.05)
    my4 = spec["source4"]
    my6 = spec.get("source6") or "fe80::1"
    sent = 0
    for frame in frames(my_mac, my4, my6, spec["macs"], v4, v6, port):
        sock.send(frame)
        sent += 1
    seen = []
    deadline = time.monotonic() + float(spec.get("wait", 1.0))
    while time.monotonic() < deadline:
        try:
            frame, addr = sock.recvfrom(65535)
        except OSError:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        what = answers(frame, own, v4, v6)
        if what:
            seen.append(what)
    print(json.dumps({"sent": sent, "seen": sorted(set(seen))}))


main()
