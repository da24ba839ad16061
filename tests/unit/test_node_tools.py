"""The node image's own servers and probe, run here on loopback: the protocols are right."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[int]:
    kind = request.param
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(NODE / "serve.py"), kind, "--bind", "127.0.0.1",
                             "--port", str(port), "--token", "tok42"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # printed once the socket is bound
    assert first["event"] == "listening"
    yield port
    proc.terminate()
    proc.wait(timeout=5)


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(NODE / "probe.py"), *args], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("server", ["minecraft"], indirect=True)
def test_minecraft_status_ping_round_trip(server: int) -> None:
    got = probe("minecraft", "127.0.0.1", str(server), "--nonce", "abcdefgh12")
    assert got["state"] == "open"
    assert got["answer"]["token"] == "tok42" and got["answer"]["nonce"] == "abcdefgh12"
    assert got["answer"]["client"] == got["local"]
    assert got["status"]["version"] == "1.20.4 (portlab)"
    assert got["pong"] is True


@pytest.mark.parametrize("server", ["http"], indirect=True)
def test_http_answer_names_the_client(server: int) -> None:
    got = probe("http", "127.0.0.1", str(server), "--path", "/x")
    assert got["status"] == 200
    assert got["answer"]["token"] == "tok42" and got["answer"]["path"] == "/x"
    assert got["answer"]["client"] == got["local"]
    assert got["answer"]["nonce"] == got["nonce"]


@pytest.mark.parametrize("server", ["udp"], indirect=True)
def test_udp_reply(server: int) -> None:
    got = probe("udp", "127.0.0.1", str(server))
    assert got["state"] == "answered" and got["answer"]["token"] == "tok42"
    assert got["answer"]["client"] == got["local"] and got["answer"]["nonce"] == got["nonce"]


def test_closed_port_is_reported_closed() -> None:
    got = probe("tcp", "127.0.0.1", str(free_port()))
    assert got["state"] == "closed"


@pytest.mark.parametrize("server", ["http"], indirect=True)
def test_minecraft_probe_against_a_web_server_is_an_error_not_a_pass(server: int) -> None:
    got = probe("minecraft", "127.0.0.1", str(server), "--timeout", "1")
    assert got["state"] == "error"


def test_probe_saves_its_answer_and_sweeps_old_ones(tmp_path: Path) -> None:
    """--save: the answer in a file too (read when Docker loses an exec's output)."""
    old = tmp_path / "old.json"
    old.write_text("{}")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    saved = tmp_path / "a.json"
    printed = probe("--save", str(saved), "tcp", "127.0.0.1", str(free_port()), "--timeout", "1")
    assert json.loads(saved.read_text()) == printed
    assert printed["state"] == "closed"
    assert not old.exists()


def test_a_person_gets_words_and_a_program_gets_json() -> None:
    port = str(free_port())
    said = subprocess.run([sys.executable, str(NODE / "probe.py"), "--words", "tcp",
                           "127.0.0.1", port, "--timeout", "1"], capture_output=True, text=True,
                          timeout=30).stdout
    assert said.startswith(f"tcp 127.0.0.1:{port}: closed: refused at once"), said
    assert "{" not in said
    assert probe("tcp", "127.0.0.1", port, "--timeout", "1")["state"] == "closed"  # a pipe: JSON
    with_json = subprocess.run([sys.executable, str(NODE / "probe.py"), "--json", "tcp",
                                "127.0.0.1", port, "--timeout", "1"], capture_output=True,
                               text=True, timeout=30).stdout
    assert json.loads(with_json)["state"] == "closed"
