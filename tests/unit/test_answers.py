"""Answers that prove who gave them (portlab/node/answers.py), on loopback with the node's own
servers and probe: a proof verifies, an altered or foreign answer does not, and the sequence
number tells the probe's own connection from one a relay opened."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab.node import answers
from tests.unit.test_node_tools import NODE, free_port

SECRET = "0123456789abcdef0123456789abcdef"
ROOT = os.geteuid() == 0  # TCP_REPAIR (the seq) needs CAP_NET_ADMIN


@pytest.fixture
def keyed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, bytes]]:
    """A portlab-serve of the given kind holding the key of node 'pc' (as nodeinit gives it)."""
    key = answers.node_key(SECRET, "pc")
    key_file = tmp_path / "answer.key"
    key_file.write_text(key.hex())
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(NODE / "serve.py"), request.param, "--bind",
                             "127.0.0.1", "--port", str(port), "--token", "tok"],
                            stdout=subprocess.PIPE, env={**os.environ,
                                                         "PORTLAB_KEY_FILE": str(key_file)})
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["event"] == "listening"
    yield port, key
    proc.terminate()
    proc.wait(timeout=5)


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(NODE / "probe.py"), *args], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    return dict(json.loads(out))


ARGS = {"http": [], "minecraft": [], "udp": [], "tcp": ["--banner"]}


@pytest.mark.parametrize("keyed", list(ARGS), indirect=True)
def test_an_answer_carries_a_proof_of_what_it_says(keyed: tuple[int, bytes],
                                                   request: pytest.FixtureRequest) -> None:
    port, key = keyed
    kind = request.node.callspec.params["keyed"]
    got = probe(kind, "127.0.0.1", str(port), *ARGS[kind])
    answer = got["answer"]
    assert answer["node"] and answer["kind"] == kind and answer["token"] == "tok"
    assert answer["client"] == got["local"]
    assert answers.valid(key, answer)
    assert not answers.valid(answers.node_key(SECRET, "router"), answer)  # another node's key
    assert not answers.valid(answers.node_key("another instance", "pc"), answer)
    for field, value in (("client", "198.51.100.10:4242"), ("node", "router"), ("nonce", "x" * 8),
                         ("seq", "1"), ("token", "other")):
        assert not answers.valid(key, {**answer, field: value}), field
    if kind != "tcp":
        assert answer["nonce"] == got["nonce"]
    if kind != "udp" and ROOT:
        assert answer["seq"] and answer["seq"] == got["seq"]


def relay(listen_port: int, to_port: int) -> threading.Thread:
    """A userspace relay: accepts, opens a new connection to the server, copies both ways."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen()

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(4096):
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def run() -> None:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", to_port))
        t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        t.start()
        pump(client, upstream)
        t.join(5)
        client.close()
        upstream.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("keyed", ["http"], indirect=True)
def test_a_relayed_answer_is_genuine_but_not_for_the_probes_own_connection(
        keyed: tuple[int, bytes]) -> None:
    port, key = keyed
    front = free_port()
    relay(front, port)
    got = probe("http", "127.0.0.1", str(front))
    answer = got["answer"]
    assert answers.valid(key, answer)  # the real server made it ...
    assert answer["client"] != got["local"]  # ... for the relay's connection, not the probe's
    if ROOT:
        assert answer["seq"] and got["seq"] and answer["seq"] != got["seq"]


def test_a_proof_needs_every_field_as_text() -> None:
    key = answers.node_key(SECRET, "pc")
    good = answers.signed(key, {"kind": "http", "node": "pc", "client": "10.0.0.2:5000"})
    assert answers.valid(key, good)
    assert not answers.valid(key, {**good, "proof": good["proof"].upper()})
    assert not answers.valid(key, {**good, "client": 5000})
    assert not answers.valid(key, {k: v for k, v in good.items() if k != "proof"})
    assert not answers.valid(key, {**good, "node": "pc" + "x" * 300})
    assert answers.signed(None, {"node": "pc"}).get("proof") is None  # no key, no proof


def test_reading_the_sequence_leaves_the_socket_as_it_was() -> None:
    """Repair mode clears SO_REUSEADDR when it ends; the socket gets it back (else its
    TIME_WAIT remnant keeps a new server, nginx, from the port for a minute)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()
    try:
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        seq = answers.received_seq(conn)
        assert (seq != "") == ROOT
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        conn.sendall(b"still works")
        assert client.recv(64) == b"still works"
    finally:
        for s in (client, conn, server):
            s.close()
