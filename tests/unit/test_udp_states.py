"""UDP ports in a scanner's words, on this machine's loopback with the node's real tools: a
portlab-serve udp server that answers is open, a silent one (`--silent`) is open|filtered, a
port nobody holds is closed (the kernel's ICMP port unreachable). The probe kind runs
portlab-probe here instead of on a node."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from portlab.backend.base import ExecResult, Stream
from portlab.model.types import Probe
from portlab.node import answers
from portlab.probes import run_for
from portlab.probes.base import Outcome, ProbeResult, ProbeRun
from tests.unit.fakes import SECRET
from tests.unit.labfiles import minimal, parse_data

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"


class Loopback:
    """Runs `portlab-probe ...` here, as the node would."""

    def __init__(self) -> None:
        self.argv: list[list[str]] = []

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        assert argv[0] == "portlab-probe"
        self.argv.append(list(argv))
        done = subprocess.run([sys.executable, str(NODE / "probe.py"), *argv[1:]],
                              capture_output=True, text=True, timeout=20)
        return ExecResult(done.returncode, done.stdout, done.stderr)

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        raise AssertionError("no streams")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["answers", "silent"])
def udp_server(request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_udp_port()
    key = tmp_path / "answer.key"  # as nodeinit gives a node its key
    key.write_text(answers.node_key(SECRET, socket.gethostname()).hex())
    argv = [sys.executable, str(NODE / "serve.py"), "udp", "--bind", "127.0.0.1", "--port",
            str(port), "--token", "tok42"] + (["--silent"] if request.param == "silent" else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            env={**os.environ, "PORTLAB_KEY_FILE": str(key)})
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["event"] == "listening"
    yield request.param, port
    proc.terminate()
    proc.wait(timeout=5)


def probe(port: int, expect: dict[str, Any], **options: Any) -> tuple[ProbeResult, Loopback]:
    nodes = Loopback()
    p = Probe("udp", "a", "127.0.0.1", port, {"timeout": 0.5, **options}, expect,
              "checks[0].probes[0]")
    run = ProbeRun(p, "a", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                   {"token": "tok42", "addr": {}}, nodes, SECRET)
    return run_for("udp")(run), nodes


def test_a_server_that_answers_is_open_and_a_silent_one_open_or_filtered(
        udp_server: tuple[str, int]) -> None:
    kind, port = udp_server
    want = "open" if kind == "answers" else "open|filtered"
    result, _ = probe(port, {"state": want})
    assert result.outcome is Outcome.PASS, (result.got, result.why)
    assert f"[state: {want}]" in result.got
    other = "open|filtered" if want == "open" else "open"
    wrong, _ = probe(port, {"state": other})
    assert wrong.outcome is Outcome.FAIL and f"it was {want}" in wrong.why
    not_open, _ = probe(port, {"state": "not-open"})
    assert not_open.outcome is (Outcome.FAIL if kind == "answers" else Outcome.PASS)


def test_a_port_nobody_holds_is_closed() -> None:
    port = free_udp_port()
    result, _ = probe(port, {"state": "closed"})
    assert result.outcome is Outcome.PASS, result.got
    assert "ICMP port unreachable" in result.got
    assert probe(port, {"state": "not-open"})[0].outcome is Outcome.PASS


def test_payload_and_source_port_reach_portlab_probe(udp_server: tuple[str, int]) -> None:
    kind, port = udp_server
    if kind == "silent":
        return
    source = free_udp_port()
    result, nodes = probe(port, {"token": True}, payload="hello", source_port=source)
    assert result.outcome is Outcome.PASS, result.got
    argv = nodes.argv[0]
    assert argv[argv.index("--payload") + 1] == "hello"
    assert argv[argv.index("--source-port") + 1] == str(source)
    assert result.data["answer"]["client"] == f"127.0.0.1:{source}"
    assert '"got": "hello nonce=' in result.data["reply"]
    assert "'hello'" in result.sent


def test_the_format_takes_udp_states_payload_and_source_port() -> None:
    data = minimal()
    data["checks"][0]["probes"] = [
        {"kind": "udp", "from": "b", "to": "a.wan", "port": 53, "payload": "x",
         "source_port": 20000, "expect": {"state": "open|filtered"}}]
    lab = parse_data(data)
    p = lab.checks[0].probes[0]
    assert p.options == {"payload": "x", "source_port": 20000}
    assert p.expect == {"state": "open|filtered"}
    data["checks"][0]["probes"][0]["expect"] = {"state": "filtered"}
    with pytest.raises(Exception, match="open\\|filtered"):
        parse_data(data)



@pytest.mark.parametrize(("options", "expect", "words"), [
    ({"send": "udp"}, {"handshake": True}, "UDP has no handshake"),
    ({"send": "tcp", "path": "/x"}, {"in_clear": True}, "'path' goes with send: http"),
    ({"send": "ftp"}, {"in_clear": True}, "expected one of: http, tcp, udp"),
])
def test_capture_sends_tcp_or_udp_but_checks_what_goes_together(
        options: dict[str, Any], expect: dict[str, Any], words: str) -> None:
    data = minimal()
    data["checks"][0]["probes"] = [{"kind": "capture", "from": "b", "to": "a.wan", "port": 80,
                                    "at": "a", **options, "expect": expect}]
    with pytest.raises(Exception, match=words):
        parse_data(data)
    data["checks"][0]["probes"][0].update(send="tcp", expect={"handshake": False})
    data["checks"][0]["probes"][0].pop("path", None)
    assert parse_data(data).checks[0].probes[0].expect == {"handshake": False}
