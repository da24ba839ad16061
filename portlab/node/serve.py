#!/usr/bin/env python3
"""portlab-serve: small real servers for labs. Each answer says who the server saw.

    portlab-serve minecraft --port 25565 --token T [--motd TEXT]
    portlab-serve http --port 80 --token T [--title TEXT]
    portlab-serve udp --port 5000 --token T [--silent]   (--silent: never answers)
    portlab-serve tcp --port 3306 --token T [--title TEXT]   (greets each client with a line)

Every kind also takes --bind ADDR (default: all addresses) and --name NAME,
the process name `ss -ltnp`, `ps` and a `listening` check's `process:` see
(default: serve-KIND, e.g. serve-http; at most 15 characters), so that two
stand-in servers on one node can be told apart.

Every answer says which node served it, the client's address and port as
this server saw them (so a check can tell forwarding, which keeps the
sender's address, from proxying or source NAT, which do not), the instance's
token, and a proof: an HMAC under this node's own key (answers.py) of all of
that, of the nonce the client sent and, for TCP, of the connection's sequence
number. A check verifies it, so an answer made on another node, rewritten on
the way, replayed, or relayed over a new connection is told apart from the
real thing. Each connection is logged to stdout as one JSON line.
Standard library only.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import pwd
import re
import socket
import socketserver
import sys
import threading

# the node tools' shared modules sit beside this script (nodelayer.TOOLS)
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import answers  # noqa: E402
import mcproto  # noqa: E402

NODE = socket.gethostname()
KEY = answers.load_key()  # this node's key: answers carry a proof made with it (answers.py)
_log_lock = threading.Lock()
PR_SET_NAME = 15  # prctl(2): this process's name, as /proc/PID/comm and `ss -p` show it


def set_name(name: str) -> None:
    """Call this process NAME instead of python3 (the kernel keeps 15 bytes of it)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"cannot name this process {name!r}")


def peer(address: tuple) -> str:
    """A client's address and port as "10.0.0.2:5000", or "[2001:db8:1::a]:5000" over IPv6;
    an IPv4 client of a dual-stack socket (::ffff:10.0.0.2) is shown as the IPv4 it is."""
    host, port = str(address[0]), address[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:"):]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def dual_stack() -> bool:
    """Whether this node has IPv6 (a node on an IPv6 network of its lab; others have it off)."""
    try:
        with open("/proc/net/if_inet6") as fh:
            return any(not line.split()[0].startswith("00000000000000000000000000000001")
                       for line in fh if line.strip())
    except OSError:
        return False


def family(bind: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in bind else socket.AF_INET


def open_socket(bind: str, kind: int) -> socket.socket:
    """A socket for `bind`; on "::", IPv4 clients too (IPV6_V6ONLY off)."""
    sock = socket.socket(family(bind), kind)
    if ":" in bind:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return sock


class DualStack:
    """A socketserver server whose socket is of the family of its address (`::`: IPv4 and
    IPv6 at once)."""

    socket: socket.socket

    def server_bind(self) -> None:
        if self.socket.family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()  # type: ignore[misc]


def log(**fields: object) -> None:
    with _log_lock:
        print(json.dumps(fields), flush=True)


def sign(kind: str, sock: socket.socket, client: str, token: str, nonce: object = "",
         seq: bool = True) -> dict[str, str]:
    """What an answer says about itself (answers.FIELDS), with its proof."""
    try:
        server = peer(sock.getsockname())
    except OSError:
        server = ""
    return answers.signed(KEY, {"kind": kind, "node": NODE, "client": client, "server": server,
                                "nonce": answers.clean_nonce(nonce),
                                "seq": answers.received_seq(sock) if seq else "",
                                "token": token})


# --- Minecraft Server List Ping --------------------------------------------------------------


class MinecraftHandler(socketserver.StreamRequestHandler):
    timeout = 10
    server: MinecraftServer

    def handle(self) -> None:
        client = peer(self.client_address)
        try:
            _, _, nonce, state = mcproto.parse_handshake(
                mcproto.read_packet(self.rfile.read, mcproto.MAX_HANDSHAKE))
            if state != 1:
                return
            while True:
                body = mcproto.read_packet(self.rfile.read, mcproto.MAX_HANDSHAKE)
                if body == b"\x00":
                    status = {
                        "version": {"name": "1.20.4 (portlab)", "protocol": mcproto.PROTOCOL},
                        "players": {"max": 20, "online": 1,
                                    "sample": [{"name": "you", "id":
                                                "00000000-0000-0000-0000-000000000000"}]},
                        "description": {"text": f"{self.server.motd} | seen from {client}"},
                        "portlab": sign("minecraft", self.connection, client,
                                        self.server.token, nonce),
                    }
                    data = json.dumps(status).encode()
                    self.wfile.write(mcproto.packet(0x00, mcproto.varint(len(data)) + data))
                    log(service="minecraft", event="status", client=client)
                elif body[:1] == b"\x01" and len(body) == 9:
                    self.wfile.write(mcproto.packet(0x01, body[1:9]))
                    return
                else:
                    return
        except Exception:  # whatever a client sends, the server goes on serving others
            return


class MinecraftServer(DualStack, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, bind: str, port: int, token: str, motd: str) -> None:
        self.token = token
        self.motd = motd
        self.address_family = family(bind)
        super().__init__((bind, port), MinecraftHandler)


# --- HTTP --------------------------------------------------------------------------------------


NONCE_HEADER = "X-Portlab-Nonce"  # portlab-probe sends one; the answer echoes it, signed


def http_server(bind: str, port: int, token: str, title: str) -> socketserver.BaseServer:
    """The HTTP server. http.server is imported here only: it takes longer to import than
    all the rest of portlab-serve (about 45 ms of CPU on a node), and the other kinds, started
    in every lab, do not need it."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class HttpHandler(BaseHTTPRequestHandler):
        server: HttpServer
        server_version = "portlab-serve"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            client = peer(self.client_address)
            body = json.dumps({
                "service": self.server.title,
                "path": self.path,
                **sign("http", self.connection, client, self.server.token,
                       self.headers.get(NONCE_HEADER, "")),
            }, indent=2).encode() + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            log(service="http", event="request", client=peer(self.client_address),
                line=format % args)

    class HttpServer(DualStack, ThreadingHTTPServer):
        daemon_threads = True

        def __init__(self, bind: str, port: int, token: str, title: str) -> None:
            self.token = token
            self.title = title
            self.address_family = family(bind)
            super().__init__((bind, port), HttpHandler)

    return HttpServer(bind, port, token, title)


# --- TCP: a server that speaks first (as databases like MySQL do) ----------------------------


class GreetingHandler(socketserver.StreamRequestHandler):
    server: GreetingServer

    def handle(self) -> None:
        client = peer(self.client_address)
        try:  # no nonce: the greeting comes first; the connection's seq makes it unique
            line = json.dumps({"service": self.server.title,
                               **sign("tcp", self.connection, client, self.server.token)})
            self.wfile.write(line.encode() + b"\n")
        except Exception:
            return
        log(service="tcp", event="greeted", client=client)


class GreetingServer(DualStack, socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, bind: str, port: int, token: str, title: str) -> None:
        self.token = token
        self.title = title
        self.address_family = family(bind)
        super().__init__((bind, port), GreetingHandler)


# --- UDP ---------------------------------------------------------------------------------------


UDP_NONCE = re.compile(rb"nonce=([A-Za-z0-9]{8,64})")


def serve_udp(sock: socket.socket, token: str, silent: bool = False) -> None:
    """Answer each datagram with who sent it; with `silent`, only log it (a port a scanner
    cannot tell from a filtered one: open|filtered)."""
    while True:
        try:
            data, addr = sock.recvfrom(65536)
        except OSError:
            continue
        client = peer(addr)
        if not silent:
            nonce = UDP_NONCE.search(data[:512])
            reply = json.dumps({"got": data[:200].decode("utf-8", "replace"),
                                **sign("udp", sock, client, token,
                                       nonce.group(1).decode() if nonce else "", seq=False)})
            try:
                sock.sendto(reply.encode(), addr)
            except OSError:
                pass
        log(service="udp", event="datagram", client=client, answered=not silent)


def cannot_listen(args: argparse.Namespace, exc: OSError) -> str:
    """Why the port could not be had, in one line that says what to look at."""
    proto = "UDP" if args.kind == "udp" else "TCP"
    what = f"cannot listen on {proto} port {args.port} ({args.bind}): {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        flag = "-lunp" if proto == "UDP" else "-ltnp"
        return (f"{what}: another program already holds that port; "
                f"`ss {flag} 'sport = :{args.port}'` says which")
    if exc.errno == errno.EACCES and args.port < 1024:
        user = pwd.getpwuid(os.geteuid()).pw_name
        return (f"{what}: ports below 1024 need root, and this runs as {user}; "
                "pick a port from 1024 up, or run it as root")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{what}: this node has no address {args.bind} (`ip -br addr` lists its own)"
    return what


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlab-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("minecraft", "http", "udp", "tcp"):
        p = sub.add_parser(kind)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--token", default="")
        p.add_argument("--bind", default=None,
                       help="address to listen on (default: all of them: 0.0.0.0, or :: for "
                            "IPv4 and IPv6 at once on a node with IPv6)")
        p.add_argument("--name", default=f"serve-{kind}",
                       help=f"the process name ss, ps and `listening` checks see "
                            f"(default: serve-{kind}; at most 15 characters)")
        if kind == "minecraft":
            p.add_argument("--motd", default="A portlab Minecraft server")
        if kind == "http":
            p.add_argument("--title", default="portlab web server")
        if kind == "tcp":
            p.add_argument("--title", default="portlab tcp server")
        if kind == "udp":
            p.add_argument("--silent", action="store_true",
                           help="receive and log datagrams, never answer (open|filtered)")
    args = parser.parse_args(argv)
    if not 0 < len(args.name) <= 15 or "/" in args.name:
        parser.error("--name takes 1 to 15 characters, without '/'")
    set_name(args.name)
    if args.bind is None:
        args.bind = "::" if dual_stack() else "0.0.0.0"
    try:
        if args.kind == "minecraft":
            server: socketserver.BaseServer = MinecraftServer(args.bind, args.port, args.token,
                                                              args.motd)
        elif args.kind == "http":
            server = http_server(args.bind, args.port, args.token, args.title)
        elif args.kind == "tcp":
            server = GreetingServer(args.bind, args.port, args.token, args.title)
        else:
            sock = open_socket(args.bind, socket.SOCK_DGRAM)
            sock.bind((args.bind, args.port))
    except OSError as exc:
        print(f"portlab-serve: {cannot_listen(args, exc)}", file=sys.stderr)
        return 1
    if args.kind == "udp":
        log(service=args.kind, event="listening", port=args.port)
        serve_udp(sock, args.token, args.silent)
        return 0
    log(service=args.kind, event="listening", port=args.port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
