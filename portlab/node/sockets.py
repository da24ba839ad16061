"""portlab-probe's socket probes: tcp, http, minecraft and udp, from this node (real traffic)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import socket
import struct
import time
from collections.abc import Iterator

import answers
import mcproto
from probeerror import CannotProbe


def classify(exc: OSError) -> str:
    """What a failed connect or send says about the network. A failure that says nothing
    about it (an errno no network answer causes) raises CannotProbe."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "filtered"
    if isinstance(exc, socket.gaierror):
        raise CannotProbe(f"cannot resolve the name: {exc}")
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return "closed"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN,
                errno.EHOSTDOWN):
        return "unreachable"
    if code in (errno.EACCES, errno.EPERM):  # this node's own firewall refused to send
        return "filtered"
    if code in (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE):
        return "closed"
    raise CannotProbe(exc)


def family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 address (2001:db8:1::a), IPv4 for anything else (an address, a name)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def at(host: str, port: int | str) -> str:
    """"10.0.0.2:80", or "[2001:db8:1::a]:80"."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_socket(sock: socket.socket, device: str | None = None,
                source_port: int | None = None, mark: int = 0,
                source: str | None = None) -> None:
    """--device: send only through that interface (SO_BINDTODEVICE), whatever the routes say;
    --source-port: a fixed local port, so a capture can tell this connection from others;
    --source: send from this address of the node (one of its own);
    `mark`: the firewall mark --via routes by."""
    try:
        if mark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        if device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if source_port or source:
            anywhere = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
            sock.bind((source or anywhere, source_port or 0))
    except OSError as exc:
        sock.close()
        where = {"device": device} if device else {}
        if source_port:
            where["source_port"] = str(source_port)
        if source:
            where["source"] = source
        what = f"interface {device}" if exc.errno == errno.ENODEV else "the local socket"
        raise CannotProbe(f"cannot use {what}: {exc.strerror or exc}", exc, **where) from None


SO_MARK = 36  # socket(7); Python names it only from 3.12 on


@contextlib.contextmanager
def via(target: str, gateway: str | None) -> Iterator[int]:
    """--via GATEWAY: this probe's packets to `target` go to GATEWAY, whatever the node's
    routing table says (a host on the same link as a router that sends it packets for the
    network behind it, which a home router's firewall must stop). Only this probe's socket
    is routed so (a firewall mark, a rule and a table of its own), and both go afterwards.
    Yields the mark to set on the socket, 0 without --via."""
    if not gateway:
        yield 0
        return
    import random  # only here: --via is rare, and every probe starts this module
    import subprocess

    six = ["-6"] if ":" in target else []
    mark = random.randint(0x10000, 0x7FFFFFFF)
    table = str(random.randint(1000, 2**31 - 1))
    host = f"{target}/{128 if six else 32}"
    steps = [["ip", *six, "rule", "add", "fwmark", hex(mark), "lookup", table, "priority", "90"],
             ["ip", *six, "route", "add", host, "via", gateway, "table", table]]
    done = []
    try:
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True)
            if proc.returncode != 0:
                raise CannotProbe(f"cannot send through {gateway}: {proc.stderr.strip()}",
                                  via=gateway)
            done.append(step)
        yield mark
    finally:
        for step in reversed(done):
            subprocess.run([*step[:step.index("add")], "del", *step[step.index("add") + 1:]],
                           capture_output=True)


def connect(host: str, port: int, args: argparse.Namespace,
            mark: int = 0) -> tuple[socket.socket | None, dict]:
    result: dict = {"target": at(host, port)}
    if getattr(args, "nonce", None):
        result["nonce"] = args.nonce
    if getattr(args, "device", None):
        result["device"] = args.device
    if getattr(args, "via", None):
        result["via"] = args.via
    if getattr(args, "source", None):
        result["source"] = args.source
    start = time.monotonic()
    sock = socket.socket(family(host), socket.SOCK_STREAM)
    sock.settimeout(args.timeout)
    bind_socket(sock, args.device, args.source_port, mark, getattr(args, "source", None))
    try:
        sock.connect((host, port))
    except OSError as exc:
        sock.close()
        result.update(state=classify(exc), error=str(exc) or "timed out")
        result["elapsed_ms"] = round((time.monotonic() - start) * 1000)
        return None, result
    local = sock.getsockname()
    result.update(state="open", local=at(local[0], local[1]))
    result["elapsed_ms"] = round((time.monotonic() - start) * 1000)
    return sock, result


def recv_some(sock: socket.socket, limit: int = 65536) -> bytes:
    """What the other side sends until it closes, at most `limit` bytes (a reset or the
    timeout ends it too: what came by then is the answer)."""
    chunks = []
    total = 0
    while total < limit:
        try:
            data = sock.recv(min(4096, limit - total))
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def text(data: bytes, limit: int) -> str:
    """Bytes from the network as text for the answer: decoded (bad UTF-8 replaced), bounded."""
    return data[:limit].decode("utf-8", "replace")


ANSWER_KEYS = (*answers.FIELDS, "proof", "service", "path")


def stand_in(value: object) -> dict | None:
    """The fields of a portlab-serve answer (answers.py) in what came back, flat and bounded,
    or None when it is not one. A check verifies them; nothing else of the answer is kept."""
    if not isinstance(value, dict) or not any(k in value for k in ("node", "client", "proof")):
        return None
    return {k: (value[k] if isinstance(value[k], str) else json.dumps(value[k])[:80])[:200]
            for k in ANSWER_KEYS if k in value}


def with_answer(out: dict, data: bytes) -> dict:
    """`out`, with the portlab-serve fields of `data` (JSON) as "answer" if it holds them."""
    try:
        found = stand_in(answers.loads(data))
    except ValueError:
        found = None
    if found is not None:
        out["answer"] = found
    return out


def malformed(result: dict, what: str, exc: BaseException) -> dict:
    """An answer that came back but could not be read: an observation (state "error"), with
    what was wrong, never a crash of the probe."""
    result.update(state="error", error=f"{what}: {str(exc)[:200] or type(exc).__name__}")
    return result


def probe_tcp(args: argparse.Namespace) -> dict:
    with via(args.host, args.via) as mark:
        sock, result = connect(args.host, args.port, args, mark)
        if sock is None:
            return result
        try:
            result["seq"] = answers.sent_seq(sock)
            if args.banner:
                sock.settimeout(max(args.timeout, ANSWER_WAIT))
                try:
                    line = sock.recv(1024)
                except TimeoutError:
                    line = b""
                except OSError as exc:
                    result["error"] = str(exc)
                    line = b""
                result["banner"] = text(line, 1024).strip()
                with_answer(result, line.split(b"\n", 1)[0])
        finally:
            sock.close()
    return result


# Once a connection is open, the other side did answer: an answer that is slow to come (a
# busy machine, fifty labs at once) is waited for this long at least, so that it is not
# mistaken for "not what this probe speaks". Connecting keeps the probe's own timeout:
# that one tells filtered from closed.
ANSWER_WAIT = 5.0
NONCE_HEADER = "X-Portlab-Nonce"


def parse_http(raw: bytes) -> dict:
    """An HTTP answer (head and body as they came) -> status, body (text, bounded) and the
    portlab-serve fields in its body. Raises ValueError when it is not an HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() \
            or len(parts[1]) != 3:
        raise ValueError(f"not an HTTP answer: {text(raw, 80)!r}")
    return with_answer({"status": int(parts[1]), "body": text(body, 2000)}, body)


def probe_http(args: argparse.Namespace) -> dict:
    host = args.host_header or (f"[{args.host}]" if ":" in args.host else args.host)
    if any(c in host + args.path for c in "\r\n "):
        raise CannotProbe("the Host header and the path may not hold spaces or line breaks")
    with via(args.host, args.via) as mark:
        sock, result = connect(args.host, args.port, args, mark)
        if sock is None:
            return result
        sock.settimeout(max(args.timeout, ANSWER_WAIT))
        request = (f"GET {args.path} HTTP/1.0\r\nHost: {host}\r\n"
                   f"User-Agent: portlab-probe\r\n{NONCE_HEADER}: {args.nonce}\r\n"
                   f"Connection: close\r\n\r\n")
        try:
            sock.sendall(request.encode())
            result["seq"] = answers.sent_seq(sock)
            raw = recv_some(sock)
        except OSError as exc:
            result.update(state=classify(exc), error=str(exc))
            return result
        finally:
            sock.close()
    try:
        result.update(parse_http(raw))
    except ValueError as exc:
        result.update(state="error", error=str(exc), got=text(raw, 200))
    return result


# --- Minecraft Server List Ping (https://wiki.vg/Server_List_Ping; mcproto.py) -----------------


def status_summary(status: dict) -> dict:
    """What a status answer says, flat and bounded: the description, version and players."""
    desc = status.get("description")
    if isinstance(desc, dict):
        desc = desc.get("text")
    version = status.get("version")
    players = status.get("players")
    out = {"description": text(str(desc).encode(), 200) if desc is not None else ""}
    if isinstance(version, dict):
        out["version"] = text(str(version.get("name", "")).encode(), 100)
    if isinstance(players, dict):
        out["players"] = f"{str(players.get('online', '?'))[:8]}/{str(players.get('max', '?'))[:8]}"
    return out


def probe_minecraft(args: argparse.Namespace) -> dict:
    with via(args.host, args.via) as mark:
        sock, result = connect(args.host, args.port, args, mark)
        if sock is None:
            return result
        sock.settimeout(max(args.timeout, ANSWER_WAIT))
        read = sock.recv
        try:
            sock.sendall(mcproto.handshake(args.host, args.port, args.nonce)
                         + mcproto.packet(0x00, b""))
            result["seq"] = answers.sent_seq(sock)
            status = mcproto.parse_status(mcproto.read_packet(read))
            result["status"] = status_summary(status)
            found = stand_in(status.get("portlab"))
            if found is not None:
                result["answer"] = found
            sent = time.monotonic()
            sock.sendall(mcproto.packet(0x01, struct.pack(">q", 1234567)))
            pong = mcproto.read_packet(read, 64)
            result["latency_ms"] = round((time.monotonic() - sent) * 1000, 2)
            result["pong"] = pong[:1] == b"\x01" and pong[1:9] == struct.pack(">q", 1234567)
        except TimeoutError as exc:
            if "status" not in result:
                malformed(result, "not a Minecraft status answer", exc)
            result.setdefault("pong", False)
        except (ConnectionError, ValueError) as exc:
            if "status" not in result:
                malformed(result, "not a Minecraft status answer", exc)
            result.setdefault("pong", False)
        except OSError as exc:
            state = classify(exc)
            result.update(state="error" if state == "filtered" else state,
                          error=f"not a Minecraft status answer: {exc}")
        finally:
            sock.close()
    return result


def parse_udp(data: bytes) -> dict:
    """A UDP reply -> its text (bounded) and the portlab-serve fields in it, if any."""
    return with_answer({"reply": text(data, 2000)}, data)


def probe_udp(args: argparse.Namespace) -> dict:
    result: dict = {"target": at(args.host, args.port), "nonce": args.nonce}
    with via(args.host, args.via) as mark:
        sock = socket.socket(family(args.host), socket.SOCK_DGRAM)
        sock.settimeout(args.timeout)
        bind_socket(sock, args.device, args.source_port, mark, getattr(args, "source", None))
        try:
            sock.connect((args.host, args.port))
            local = sock.getsockname()
            result["local"] = at(local[0], local[1])
            sock.send(f"{args.payload} nonce={args.nonce}".encode())
            data = sock.recv(65536)
            result.update(state="answered", **parse_udp(data))
        except OSError as exc:
            result.update(state=classify(exc), error=str(exc) or "no answer")
        finally:
            sock.close()
    return result
