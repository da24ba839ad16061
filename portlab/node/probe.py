#!/usr/bin/env python3
"""portlab-probe: send one piece of real traffic from this node, print what happened as JSON.

    portlab-probe tcp HOST PORT [--timeout S] [--banner]
    portlab-probe http HOST PORT [--path /] [--timeout S]
    portlab-probe minecraft HOST PORT [--timeout S]
    portlab-probe udp HOST PORT [--payload TEXT] [--timeout S]
    portlab-probe listening tcp|udp PORT
    portlab-probe capture start IFACE [--filter BPF]  /  portlab-probe capture stop ID

Every result has "state": one of
    open / answered   the other side answered
    closed            a TCP reset or ICMP port unreachable came back (a scanner says "closed")
    filtered          nothing came back before the timeout, or this node's own firewall
                      refused to send (a scanner says "filtered")
    unreachable       no route, or an ICMP host/network unreachable or "prohibited" came
                      back (REJECT --reject-with icmp-host-prohibited): Linux reports both
                      as "no route to host", so portlab cannot tell them apart; a scanner
                      such as nmap, which reads the ICMP code itself, says "filtered" for
                      "prohibited"
    error             the other side answered with something that was not expected, or
                      that could not be read (malformed, cut off, nested too deeply): an
                      observation like the others, never a crash of the probe
    probe-error       the probe could not send or listen at all (an unknown --device, a
                      local port in use, a name that does not resolve): nothing was
                      observed, so this is no verdict; the exit code is then 3
plus "local" (the address:port this node sent from) and what came back, bounded:
the text of the answer, and as "answer" the fields of a portlab-serve answer
(the node that served it, the client it saw, its proof: see answers.py).
"seq" is this connection's next sequence number after the request and
"nonce" what the server was asked to echo: portlab's checks compare them with
the answer's, which tells the same connection from a relayed one.
`listening` sends nothing: it reads this node's own sockets (/proc/net) and
says which process listens on PORT ("listening" or "not-listening").
`capture start` starts tcpdump on IFACE (or "any") in the background and
returns once it listens; `capture stop ID` stops it and lists the packets it
saw (addresses, protocol, ports, sizes: what anyone on that link could see).
Options for tcp/http/minecraft/udp: --device IFACE sends only through that
interface (as if a VPN's routes were not there), --source-port PORT fixes the
local port, --via GATEWAY sends to HOST through that gateway whatever the
routes say (only this probe's packets: what a neighbour on the link can do).
Learners may run it too: it is how `portlab check` sees the lab.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import pwd
import random
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

# the node tools' shared modules sit beside this script (nodelayer.TOOLS)
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import answers  # noqa: E402
import mcproto  # noqa: E402

PROBE_ERROR = 3  # the exit code when the probe could not do its work (state probe-error)


class CannotProbe(Exception):
    """This node could not send (or listen): a problem of the probe, not a network verdict."""

    def __init__(self, exc: OSError | str, cause: OSError | None = None, **where: str) -> None:
        super().__init__(str(exc))
        self.fields: dict = {"state": "probe-error", "error": str(exc), **where}
        cause = cause or (exc if isinstance(exc, OSError) else None)
        if cause is not None and cause.errno:
            self.fields["errno"] = errno.errorcode.get(cause.errno, str(cause.errno))


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
                source_port: int | None = None, mark: int = 0) -> None:
    """--device: send only through that interface (SO_BINDTODEVICE), whatever the routes say;
    --source-port: a fixed local port, so a capture can tell this connection from others;
    `mark`: the firewall mark --via routes by."""
    try:
        if mark:
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
        if device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::" if sock.family == socket.AF_INET6 else "0.0.0.0", source_port))
    except OSError as exc:
        sock.close()
        where = {"device": device} if device else {}
        if source_port:
            where["source_port"] = str(source_port)
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
    start = time.monotonic()
    sock = socket.socket(family(host), socket.SOCK_STREAM)
    sock.settimeout(args.timeout)
    bind_socket(sock, args.device, args.source_port, mark)
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
        bind_socket(sock, args.device, args.source_port, mark)
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


# --- listening: this node's own sockets, and the processes that hold them --------------------

SOCKET_LISTENING = {"tcp": "0A", "udp": "07"}  # TCP_LISTEN; an unconnected bound UDP socket


def proc_address(text: str) -> str:
    """/proc/net/tcp's "0100007F:0016" -> "127.0.0.1:22" (addresses are in host byte order)."""
    addr, port = text.rsplit(":", 1)
    raw = bytes.fromhex(addr)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    raw = b"".join(words)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw)}:{int(port, 16)}"
    return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{int(port, 16)}"


def listening_sockets(proto: str, port: int) -> dict[str, tuple[str, int]]:
    """Socket inode -> (local address, owner's uid), for this node's sockets listening on PORT.

    The owner is the user whose process made the socket: /proc/net says it even where the
    process itself is not visible (another user's /proc/PID/fd needs CAP_SYS_PTRACE)."""
    found: dict[str, tuple[str, int]] = {}
    read = 0
    for table in (proto, proto + "6"):
        try:
            with open(f"/proc/net/{table}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        read += 1
        for row in rows:
            parts = row.split()
            if len(parts) < 10 or parts[3] != SOCKET_LISTENING[proto]:
                continue
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                found[parts[9]] = (proc_address(parts[1]), int(parts[7]))
    if not read:
        raise CannotProbe(f"cannot read /proc/net/{proto}: this node's sockets are not visible")
    return found


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_info(pid: str) -> dict:
    info: dict = {"pid": int(pid)}
    try:
        with open(f"/proc/{pid}/comm") as fh:
            info["name"] = fh.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            info["cmdline"] = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        with open(f"/proc/{pid}/status") as fh:
            uids = next(ln for ln in fh if ln.startswith("Uid:")).split()
        info["uid"] = int(uids[2])  # effective: whose rights the process binds with
        info["user"] = user_name(info["uid"])
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    return info


def socket_owners(inodes: set[str]) -> dict[str, list[dict]]:
    """Socket inode -> the processes holding it open (found through /proc/PID/fd)."""
    owners: dict[str, list[dict]] = {inode: [] for inode in inodes}
    pids = sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        held = set()
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in owners:
                held.add(link[8:-1])
        for inode in sorted(held):
            owners[inode].append(process_info(pid))
    return owners


def probe_listening(args: argparse.Namespace) -> dict:
    sockets = listening_sockets(args.proto, args.port)
    owners = socket_owners(set(sockets))
    return {
        "target": f"{args.proto}/{args.port}",
        "state": "listening" if sockets else "not-listening",
        "sockets": [{"local": local, "uid": uid, "user": user_name(uid),
                     "processes": owners[inode]}
                    for inode, (local, uid) in sorted(sockets.items(), key=lambda kv: kv[1])],
    }


# --- capture: what a node on the path sees (tcpdump, then the pcap file read here) ------------

CAPTURE_DIR = "/run/portlab/captures"
MAX_PACKETS = 5000
LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW = 1, 113, 276, 101
IP_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmp6"}


def capture_start(args: argparse.Namespace) -> dict:
    os.makedirs(CAPTURE_DIR, exist_ok=True)
    cid = f"{os.getpid()}-{int(time.time() * 1000)}"
    pcap = os.path.join(CAPTURE_DIR, cid + ".pcap")
    log = os.path.join(CAPTURE_DIR, cid + ".log")
    # --immediate-mode: hand each packet over at once (by default libpcap waits up to a
    # second to fill a buffer, and what is still waiting when tcpdump stops is lost);
    # -U: write each packet to the file at once; -Z root: write the file as root (Debian's
    # tcpdump would switch to its own user); -n: no name lookups; -p: no promiscuous mode;
    # -B: a capture buffer of 8 MiB, not 2: with the default, a router of the ipv6 lab lost 2
    # to 13 of some 30 packets of one request ("dropped by kernel"), and none with this
    argv = ["tcpdump", "-i", args.iface, "-n", "-p", "--immediate-mode", "-U", "-Z", "root",
            "-B", "8192", "-w", pcap]
    if args.filter:
        argv += args.filter.split()
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(log, "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
        if "listening on" in text:
            with open(os.path.join(CAPTURE_DIR, cid + ".pid"), "w") as fh:
                fh.write(str(proc.pid))
            return {"state": "capturing", "id": cid, "iface": args.iface, "pid": proc.pid}
        if proc.poll() is not None:
            raise CannotProbe(f"tcpdump stopped: {text.strip()[-300:]}", iface=args.iface)
        time.sleep(0.01)
    proc.kill()
    raise CannotProbe("tcpdump did not start listening within 10 s", iface=args.iface)


def capture_stop(args: argparse.Namespace) -> dict:
    base = os.path.join(CAPTURE_DIR, os.path.basename(args.id))
    try:
        with open(base + ".pid") as fh:
            pid = int(fh.read().strip())
    except (OSError, ValueError):
        raise CannotProbe(f"no capture {args.id} on this node") from None
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:  # it exits once all is written
        time.sleep(0.01)
    try:
        with open(base + ".log", "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
        with open(base + ".pcap", "rb") as fh:
            packets, linktype = read_pcap(fh.read())
    except OSError as exc:
        raise CannotProbe(f"cannot read the capture: {exc}") from None
    finally:
        for ext in (".pcap", ".log", ".pid"):
            try:
                os.unlink(base + ext)
            except OSError:
                pass
    # tcpdump's own counts: "received by filter" above "captured" means packets were lost
    counts = {key: int(m.group(1)) for key, pattern in (
        ("captured", r"(\d+) packets? captured"),
        ("received_by_filter", r"(\d+) packets? received by filter"),
        ("dropped_by_kernel", r"(\d+) packets? dropped by kernel"))
        if (m := re.search(pattern, text))}
    return {"state": "captured", "id": args.id, "linktype": linktype, "tcpdump": counts,
            "count": len(packets), "packets": packets[:MAX_PACKETS],
            "truncated": len(packets) > MAX_PACKETS}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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


def probe_capture(args: argparse.Namespace) -> dict:
    return capture_start(args) if args.action == "start" else capture_stop(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlab-probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", metavar="FILE",
                        help="also write the JSON answer to FILE (replaced atomically)")
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("tcp", "http", "minecraft", "udp"):
        p = sub.add_parser(kind)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=1.5)
        p.add_argument("--device", metavar="IFACE",
                       help="send only through this interface (SO_BINDTODEVICE), bypassing "
                            "the routing table's choice, e.g. a VPN's routes")
        p.add_argument("--source-port", type=int, metavar="PORT",
                       help="send from this local port")
        p.add_argument("--via", metavar="GATEWAY",
                       help="send to HOST through this gateway on the same link, whatever "
                            "this node's routes say (only this probe's packets)")
        if kind != "tcp":
            p.add_argument("--nonce", type=answers.clean_nonce, default=secrets.token_hex(8),
                           help="what the server's answer must echo (8 to 64 letters and "
                                "digits; default: a fresh random one)")
        if kind == "tcp":
            p.add_argument("--banner", action="store_true",
                           help="read the first line the server sends")
        if kind == "http":
            p.add_argument("--path", default="/")
            p.add_argument("--host-header", metavar="NAME",
                           help="the Host header to send (default: HOST): which site a "
                                "server of many names, such as a reverse proxy, should answer")
        if kind == "udp":
            p.add_argument("--payload", default="portlab-probe")
    p = sub.add_parser("listening", help="which process listens on PORT of this very node")
    p.add_argument("proto", choices=("tcp", "udp"))
    p.add_argument("port", type=int)
    p = sub.add_parser("capture", help="what this node sees on an interface (tcpdump)")
    csub = p.add_subparsers(dest="action", required=True)
    c = csub.add_parser("start", help="start capturing; prints the capture's id")
    c.add_argument("iface", help="interface name, or 'any'")
    c.add_argument("--filter", default="", help="a tcpdump filter, e.g. 'host 10.0.0.2'")
    c = csub.add_parser("stop", help="stop a capture and list its packets")
    c.add_argument("id")
    args = parser.parse_args(argv)
    if args.save:
        _sweep(os.path.dirname(args.save) or ".")
    handler = {"tcp": probe_tcp, "http": probe_http, "minecraft": probe_minecraft,
               "udp": probe_udp, "listening": probe_listening,
               "capture": probe_capture}[args.kind]
    if getattr(args, "nonce", None) == "":
        parser.error("--nonce takes 8 to 64 letters and digits")
    code = 0
    try:
        result = handler(args)
    except CannotProbe as exc:
        result, code = exc.fields, PROBE_ERROR
    except Exception as exc:  # portlab-probe's own fault, never the network's: no verdict
        result = {"state": "probe-error", "error": f"portlab-probe failed: "
                  f"{type(exc).__name__}: {str(exc)[:300]}"}
        code = PROBE_ERROR
    result["kind"] = args.kind
    out = json.dumps(result)
    if args.save:
        _save(args.save, out)
    print(out)
    return code


ANSWER_MAX_AGE = 600  # seconds an answer file is kept for a late reader


def _save(path: str, text: str) -> None:
    """The answer in a file too: Docker sometimes loses the output of a short `docker exec`
    (moby/moby#27289, docker/docker-py#2042), and portlab then reads it from here."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        fh.write(text + "\n")
    os.replace(path + ".tmp", path)


def _sweep(folder: str) -> None:
    """Remove answer files old enough that nobody will read them."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        path = os.path.join(folder, name)
        try:
            if now - os.stat(path).st_mtime > ANSWER_MAX_AGE:
                os.unlink(path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
