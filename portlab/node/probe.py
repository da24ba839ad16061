#!/usr/bin/env python3
"""portlab-probe: send one piece of real traffic from this node, print what happened as JSON.

    portlab-probe tcp HOST PORT [--timeout S] [--banner]
    portlab-probe http HOST PORT [--path /] [--timeout S]
    portlab-probe minecraft HOST PORT [--timeout S]
    portlab-probe udp HOST PORT [--payload TEXT] [--timeout S]

Every result has "state": one of
    open / answered   the other side answered
    closed            a TCP reset or ICMP port unreachable came back (a scanner says "closed")
    filtered          nothing came back before the timeout, or an ICMP "prohibited"
                      (a scanner says "filtered")
    unreachable       no route, or ICMP host/network unreachable
    error             the other side answered with something that was not expected
plus "local" (the address:port this node sent from) and what came back.
Learners may run it too: it is how `portlab check` sees the lab.
Standard library only.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import struct
import sys
import time


def classify(exc: OSError) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "filtered"
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return "closed"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return "unreachable"
    if code in (errno.EACCES, errno.EPERM):  # ICMP admin prohibited, or local firewall
        return "filtered"
    if code == errno.ECONNRESET:
        return "closed"
    return "error"


def connect(host: str, port: int, timeout: float) -> tuple[socket.socket | None, dict]:
    result: dict = {"target": f"{host}:{port}"}
    start = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError as exc:
        sock.close()
        result.update(state=classify(exc), error=str(exc) or "timed out")
        result["elapsed_ms"] = round((time.monotonic() - start) * 1000)
        return None, result
    local = sock.getsockname()
    result.update(state="open", local=f"{local[0]}:{local[1]}")
    result["elapsed_ms"] = round((time.monotonic() - start) * 1000)
    return sock, result


def recv_some(sock: socket.socket, limit: int = 65536) -> bytes:
    chunks = []
    total = 0
    while total < limit:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def probe_tcp(args: argparse.Namespace) -> dict:
    sock, result = connect(args.host, args.port, args.timeout)
    if sock is None:
        return result
    if args.banner:
        sock.settimeout(args.timeout)
        try:
            line = sock.recv(1024)
        except TimeoutError:
            line = b""
        except OSError as exc:
            result["error"] = str(exc)
            line = b""
        result["banner"] = line.decode("utf-8", "replace").strip()
    sock.close()
    return result


def probe_http(args: argparse.Namespace) -> dict:
    sock, result = connect(args.host, args.port, args.timeout)
    if sock is None:
        return result
    request = (f"GET {args.path} HTTP/1.0\r\nHost: {args.host}\r\n"
               f"User-Agent: portlab-probe\r\nConnection: close\r\n\r\n")
    try:
        sock.sendall(request.encode())
        raw = recv_some(sock)
    except OSError as exc:
        sock.close()
        result.update(state=classify(exc), error=str(exc))
        return result
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        result.update(state="error", error="not an HTTP answer",
                      got=raw[:200].decode("utf-8", "replace"))
        return result
    result["status"] = int(parts[1])
    text = body.decode("utf-8", "replace")
    result["body"] = text[:2000]
    try:
        result["json"] = json.loads(text)
    except ValueError:
        pass
    return result


# --- Minecraft Server List Ping (https://wiki.vg/Server_List_Ping) -------------------------


def varint(value: int) -> bytes:
    out = b""
    value &= 0xFFFFFFFF
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def read_varint(sock: socket.socket) -> int:
    result = 0
    for i in range(5):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("connection closed while reading")
        result |= (byte[0] & 0x7F) << (7 * i)
        if not byte[0] & 0x80:
            return result
    raise ValueError("varint too long")


def read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed while reading")
        data += chunk
    return data


def packet(packet_id: int, payload: bytes) -> bytes:
    body = varint(packet_id) + payload
    return varint(len(body)) + body


def mc_string(text: str) -> bytes:
    raw = text.encode()
    return varint(len(raw)) + raw


def probe_minecraft(args: argparse.Namespace) -> dict:
    sock, result = connect(args.host, args.port, args.timeout)
    if sock is None:
        return result
    try:
        handshake = varint(765) + mc_string(args.host) + struct.pack(">H", args.port) + varint(1)
        sock.sendall(packet(0x00, handshake) + packet(0x00, b""))
        length = read_varint(sock)
        if length > 1 << 20:
            raise ValueError("status packet too large")
        body = read_exact(sock, length)
        packet_id = body[0]
        if packet_id != 0x00:
            raise ValueError(f"unexpected packet id {packet_id}")
        # body[1:] = varint string length + JSON
        rest = body[1:]
        shift = 0
        strlen = 0
        pos = 0
        while True:
            b = rest[pos]
            strlen |= (b & 0x7F) << shift
            pos += 1
            shift += 7
            if not b & 0x80:
                break
        status = json.loads(rest[pos:pos + strlen].decode())
        sent = time.monotonic()
        sock.sendall(packet(0x01, struct.pack(">q", 1234567)))
        length = read_varint(sock)
        pong = read_exact(sock, length)
        result["latency_ms"] = round((time.monotonic() - sent) * 1000, 2)
        result["pong"] = pong[0] == 0x01 and struct.unpack(">q", pong[1:9])[0] == 1234567
        result["status"] = status
    except (OSError, ValueError, IndexError, ConnectionError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            state = classify(exc)
            result.update(state="error" if state == "filtered" else state)
        else:
            result.update(state="error")
        result["error"] = f"not a Minecraft status answer: {exc}"
    finally:
        sock.close()
    return result


def probe_udp(args: argparse.Namespace) -> dict:
    result: dict = {"target": f"{args.host}:{args.port}"}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(args.timeout)
    try:
        sock.connect((args.host, args.port))
        local = sock.getsockname()
        result["local"] = f"{local[0]}:{local[1]}"
        sock.send(args.payload.encode())
        data = sock.recv(65536)
        result.update(state="answered", reply=data.decode("utf-8", "replace")[:2000])
        try:
            result["json"] = json.loads(data)
        except ValueError:
            pass
    except OSError as exc:
        result.update(state=classify(exc), error=str(exc) or "no answer")
    finally:
        sock.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlab-probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("tcp", "http", "minecraft", "udp"):
        p = sub.add_parser(kind)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=1.5)
        if kind == "tcp":
            p.add_argument("--banner", action="store_true",
                           help="read the first line the server sends")
        if kind == "http":
            p.add_argument("--path", default="/")
        if kind == "udp":
            p.add_argument("--payload", default="portlab-probe")
    args = parser.parse_args(argv)
    handler = {"tcp": probe_tcp, "http": probe_http, "minecraft": probe_minecraft,
               "udp": probe_udp}[args.kind]
    result = handler(args)
    result["kind"] = args.kind
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
