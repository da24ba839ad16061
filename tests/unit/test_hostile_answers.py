"""A hostile server, on loopback, answers portlab-probe with what a student's node could send:
deeply nested JSON, invalid UTF-8, a huge answer, a reset in the middle, a forged or relayed
answer. Each is an observation judged as a failure with words that say what came back, never
an error of portlab's and never a crash (the probe exits 0, the check is FAIL)."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from portlab.backend.base import ExecResult, Stream
from portlab.model.types import Probe
from portlab.node import answers
from portlab.probes import run_for
from portlab.probes.base import Outcome, ProbeResult, ProbeRun
from tests.unit.fakes import SECRET
from tests.unit.test_fuzz_parsers import deep, mcproto
from tests.unit.test_node_tools import NODE

Reply = Callable[[socket.socket, bytes], None]  # what the hostile server does with a client


def varint_packet(payload: bytes) -> bytes:
    return mcproto.varint(len(payload)) + payload


def status_of(text: bytes) -> bytes:
    return varint_packet(b"\x00" + mcproto.varint(len(text)) + text)


def reset(sock: socket.socket, first: bytes = b"") -> None:
    """Send `first`, then end the connection with a reset (SO_LINGER 0)."""
    if first:
        sock.sendall(first)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def forged(kind: str) -> dict[str, str]:
    """An answer made up by a node that has no key: it names the right node, and guesses."""
    return {"kind": kind, "node": "gamer-pc", "client": "127.0.0.1:1", "server": "", "nonce": "",
            "seq": "", "token": "x", "proof": "0" * 32}


MINECRAFT: dict[str, Reply] = {
    "deeply nested JSON": lambda s, _: s.sendall(status_of(deep(100_000).encode())),
    "invalid UTF-8": lambda s, _: s.sendall(status_of(b'{"description": "\xff\xfe\xc3"}')),
    "a huge length": lambda s, _: s.sendall(mcproto.varint(1 << 28) + b"\x00" * 10),
    "a reset mid-answer": lambda s, _: reset(s, mcproto.varint(300) + b"\x00\x10{"),
    "an endless number": lambda s, _: s.sendall(b"\xff" * 20),
    "not JSON": lambda s, _: s.sendall(status_of(b"\x00\x01garbage")),
    "a forged answer": lambda s, _: s.sendall(status_of(json.dumps(
        {"portlab": forged("minecraft")}).encode())),
}
HTTP: dict[str, Reply] = {
    "deeply nested JSON": lambda s, _: s.sendall(b"HTTP/1.0 200 OK\r\n\r\n"
                                                 + deep(100_000, "{").encode()),
    "invalid UTF-8": lambda s, _: s.sendall(b"HTTP/1.0 200 \xff\r\n\r\n\xff\xfe{"),
    "a huge answer": lambda s, _: s.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * (8 << 20)),
    "a reset mid-answer": lambda s, _: reset(s, b"HTTP/1.0 200 OK\r\nContent-Le"),
    "not HTTP": lambda s, _: s.sendall(b"\x00\x01\x02 hello"),
    "a forged answer": lambda s, _: s.sendall(b"HTTP/1.0 200 OK\r\n\r\n"
                                              + json.dumps(forged("http")).encode()),
}


def serve_tcp(reply: Reply) -> tuple[int, threading.Thread]:
    """A server on loopback that answers one client with `reply`."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def run() -> None:
        conn, _ = server.accept()
        conn.settimeout(5)
        try:
            got = conn.recv(4096)
            reply(conn, got)
        except OSError:
            pass
        finally:
            conn.close()
            server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


class Loopback:
    """Runs `portlab-probe ...` here, as the node would, and keeps what it printed."""

    def __init__(self) -> None:
        self.done: list[ExecResult] = []

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        proc = subprocess.run([sys.executable, str(NODE / "probe.py"), *argv[1:]],
                              capture_output=True, text=True, timeout=30)
        self.done.append(ExecResult(proc.returncode, proc.stdout, proc.stderr))
        return self.done[-1]

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        raise AssertionError("no streams")


def judge(kind: str, port: int, expect: dict[str, Any]) -> tuple[ProbeResult, Loopback]:
    nodes = Loopback()
    probe = Probe(kind, "friend", "127.0.0.1", port, {"timeout": 2}, expect,
                  "checks[0].probes[0]")
    run = ProbeRun(probe, "friend", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                   {"token": "x", "addr": {}}, nodes, SECRET)
    return run_for(kind)(run), nodes


@pytest.fixture(params=[("minecraft", k) for k in MINECRAFT] + [("http", k) for k in HTTP],
                ids=lambda p: f"{p[0]}: {p[1]}")
def hostile(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, int]]:
    kind, what = request.param
    port, thread = serve_tcp((MINECRAFT if kind == "minecraft" else HTTP)[what])
    yield kind, what, port
    thread.join(10)


def test_a_hostile_answer_is_a_failure_with_words_never_an_error(
        hostile: tuple[str, str, int]) -> None:
    kind, what, port = hostile
    result, nodes = judge(kind, port, {"token": True, "served_by": "gamer-pc"})
    assert nodes.done[0].exit_code == 0, nodes.done[0]  # the probe observed, and said so
    assert "Traceback" not in nodes.done[0].stderr
    assert result.outcome is Outcome.FAIL, (result.got, result.why)
    assert result.why and result.got
    assert len(nodes.done[0].stdout) < 100_000  # bounded, whatever came back
    if what == "a forged answer":
        assert "proof does not match" in result.why


def test_an_answer_proved_for_another_node_says_who_answered() -> None:
    """A server of the router's own, holding the router's key, in the PC's place."""
    def reply(sock: socket.socket, request: bytes) -> None:
        nonce = request.split(b"X-Portlab-Nonce: ", 1)[1].split(b"\r\n", 1)[0].decode()
        host, port = sock.getpeername()[:2]
        client = f"{host}:{port}"
        made = answers.signed(answers.node_key(SECRET, "router"),
                              {"kind": "http", "node": "router", "client": client,
                               "nonce": nonce, "token": "x"})
        sock.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + json.dumps(made).encode())

    port, thread = serve_tcp(reply)
    result, _ = judge("http", port, {"token": True, "served_by": "gamer-pc"})
    thread.join(10)
    assert result.outcome is Outcome.FAIL
    assert result.why.startswith("the answer came from router, not gamer-pc: something on "
                                 "router answered in gamer-pc's place")


def test_a_replayed_answer_is_old() -> None:
    def reply(sock: socket.socket, request: bytes) -> None:
        host, port = sock.getpeername()[:2]
        client = f"{host}:{port}"
        made = answers.signed(answers.node_key(SECRET, "gamer-pc"),
                              {"kind": "http", "node": "gamer-pc", "client": client,
                               "nonce": "recordedearlier1", "token": "x"})
        sock.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + json.dumps(made).encode())

    port, thread = serve_tcp(reply)
    result, _ = judge("http", port, {"token": True, "served_by": "gamer-pc"})
    thread.join(10)
    assert result.outcome is Outcome.FAIL and "replayed" in result.why
