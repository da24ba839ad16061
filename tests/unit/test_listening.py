"""The `listening` probe kind (a node's own sockets) and the greeting `tcp` server, no Docker.

The node tools run here on loopback against real sockets; the check kind's
verdicts are judged from the tool's JSON answer.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portlab.backend.base import ExecResult
from portlab.model.types import Probe
from portlab.probes import run_for
from portlab.probes.base import CannotObserve, ProbeRun
from tests.unit.fakes import FakeNodes, nonce_of
from tests.unit.labfiles import minimal, parse_data

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool(name: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(NODE / name), *args], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    answer: dict[str, Any] = json.loads(out)
    return answer


@pytest.fixture
def greeter() -> Iterator[tuple[int, int]]:
    """A `portlab-serve tcp` server on loopback: (port, pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(NODE / "serve.py"), "tcp", "--bind", "127.0.0.1",
                             "--port", str(port), "--token", "tok42", "--title", "db"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["event"] == "listening"
    yield port, proc.pid
    proc.terminate()
    proc.wait(timeout=5)


def test_tcp_server_greets_with_token_and_client(greeter: tuple[int, int]) -> None:
    port, _ = greeter
    got = tool("probe.py", "tcp", "127.0.0.1", str(port), "--banner")
    assert got["state"] == "open"
    greeting = json.loads(got["banner"])
    assert greeting["token"] == "tok42" and greeting["service"] == "db"
    assert greeting["client"] == got["local"]


def test_listening_names_the_process_that_holds_the_socket(greeter: tuple[int, int]) -> None:
    port, pid = greeter
    got = tool("probe.py", "listening", "tcp", str(port))
    assert got["state"] == "listening"
    [sock] = got["sockets"]
    assert sock["local"] == f"127.0.0.1:{port}"
    assert [p["pid"] for p in sock["processes"]] == [pid]
    assert "serve.py" in sock["processes"][0]["cmdline"]
    assert sock["processes"][0]["name"] == "serve-tcp"  # its own name, not python3
    assert sock["uid"] == sock["processes"][0]["uid"] == os.geteuid()
    assert sock["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert sock["processes"][0]["user"] == pwd.getpwuid(os.geteuid()).pw_name


def test_a_stand_in_server_can_be_given_a_name_of_its_own() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(NODE / "serve.py"), "http", "--bind",
                             "127.0.0.1", "--port", str(port), "--name", "photos"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["event"] == "listening"
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "photos"
        got = tool("probe.py", "listening", "tcp", str(port))
        assert [p["name"] for p in got["sockets"][0]["processes"]] == ["photos"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    bad = subprocess.run([sys.executable, str(NODE / "serve.py"), "http", "--port", "1",
                          "--name", "a-name-far-too-long"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--name takes 1 to 15 characters" in bad.stderr


def test_nothing_listening_is_reported() -> None:
    port = free_port()
    got = tool("probe.py", "listening", "tcp", str(port))
    assert got == {"target": f"tcp/{port}", "state": "not-listening", "sockets": [],
                   "kind": "listening"}


SSHD = {"pid": 22, "name": "sshd", "uid": 0, "user": "root",
        "cmdline": "sshd: /usr/sbin/sshd -D -e [listener] 0 of 10-100 startups"}
NC = {"pid": 40, "name": "nc", "cmdline": "nc -lk 22"}


def run_kind(answer: dict[str, Any], expect: dict[str, Any]) -> Any:
    program = ["--program", expect["program"]] if "program" in expect else []
    calls: list[list[str]] = []

    def fake_exec(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        return ExecResult(0, json.dumps(answer) + "\n", "")

    probe = Probe("listening", "server", None, 22, {}, expect, "checks[0].probes[0]")
    result = run_for("listening")(ProbeRun(probe, "server", "203.0.113.10", None, "",
                                           {"addr": {}}, FakeNodes(fake_exec)))
    assert len(calls) == 1 and calls[0][:2] == ["portlab-probe", "--save"]
    assert calls[0][3:] == ["listening", "tcp", "22", *program]
    return result


def answer(*procs: dict[str, Any]) -> dict[str, Any]:
    if not procs:
        return {"state": "not-listening", "sockets": []}
    def sock(local: str) -> dict[str, Any]:
        owner = {k: procs[0][k] for k in ("uid", "user") if k in procs[0]}
        return {"local": local, **owner, "processes": list(procs)}
    return {"state": "listening", "sockets": [sock("0.0.0.0:22"), sock("[::]:22")]}


def test_sshd_listening_passes_and_says_where() -> None:
    result = run_kind(answer(SSHD), {"process": "sshd"})
    assert result.passed
    assert result.got == "sshd (pid 22, user root) listens on 0.0.0.0:22, [::]:22"


def test_stopped_service_fails() -> None:
    result = run_kind(answer(), {"process": "sshd"})
    assert not result.passed and result.got == "nothing listens on TCP port 22"


def test_another_program_on_the_port_fails() -> None:
    result = run_kind(answer(NC), {"process": "sshd"})
    assert not result.passed and "not sshd" in result.why


WEB_AS_NOBODY = {"pid": 50, "name": "python3", "uid": 65534, "user": "nobody",
                 "cmdline": "python3 -m http.server 8080"}


def test_the_user_a_service_runs_as_is_expectable() -> None:
    assert run_kind(answer(WEB_AS_NOBODY), {"user": "nobody"}).passed
    assert run_kind(answer(WEB_AS_NOBODY), {"process": "python3", "user": "nobody"}).passed
    as_root = run_kind(answer(SSHD), {"user": "nobody"})
    assert not as_root.passed and as_root.why == ("the program listening there runs as root, "
                                                  "not as nobody")
    # another user's process is not visible on a node (no CAP_SYS_PTRACE): the socket's
    # owner, from /proc/net, still says who
    hidden = {"state": "listening", "sockets": [{"local": "0.0.0.0:8080", "uid": 65534,
                                                 "user": "nobody", "processes": []}]}
    result = run_kind(hidden, {"user": "nobody"})
    assert result.passed
    assert result.got == ("a program of user nobody (its process is not visible) listens on "
                          "0.0.0.0:8080")


def test_a_tool_that_does_not_say_the_user_is_an_error_not_a_verdict() -> None:
    unknown = {"pid": 50, "name": "python3", "cmdline": "python3 -m http.server 8080"}
    with pytest.raises(CannotObserve, match="did not say which user runs the program"):
        run_kind(answer(unknown), {"user": "nobody"})


def test_serve_says_in_one_line_why_it_cannot_listen() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = subprocess.run([sys.executable, str(NODE / "serve.py"), "http", "--bind",
                               "127.0.0.1", "--port", str(port)], capture_output=True, text=True,
                              timeout=20)
    assert busy.returncode == 1 and busy.stdout == ""
    assert busy.stderr == (f"portlab-serve: cannot listen on TCP port {port} (127.0.0.1): "
                           "Address already in use: another program already holds that port; "
                           f"`ss -ltnp 'sport = :{port}'` says which\n")
    nowhere = subprocess.run([sys.executable, str(NODE / "serve.py"), "udp", "--bind",
                              "198.18.254.254", "--port", str(port)], capture_output=True,
                             text=True, timeout=20)
    assert nowhere.returncode == 1 and "this node has no address 198.18.254.254" in nowhere.stderr


def test_listening_false_wants_nothing_there() -> None:
    assert run_kind(answer(), {"listening": False}).passed
    assert not run_kind(answer(SSHD), {"listening": False}).passed


def test_lab_files_accept_listening_probes_without_a_target() -> None:
    data = minimal()
    data["checks"].append({"id": "web-runs", "title": "a runs its web server",
                           "probes": [{"kind": "listening", "from": "a", "port": 80,
                                       "expect": {"process": "python3"}}]})
    lab = parse_data(data)
    probe = lab.checks[-1].probes[0]
    assert probe.target is None and probe.expect == {"process": "python3"}


def test_http_probe_sends_the_host_header_a_reverse_proxy_routes_by() -> None:
    """`host_header`: the probe asks an address for one site by name, as a browser does."""
    import threading

    seen: list[bytes] = []
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]

        def answer_once() -> None:
            conn, _ = srv.accept()
            with conn:
                seen.append(conn.recv(4096))
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nshop")

        t = threading.Thread(target=answer_once)
        t.start()
        got = tool("probe.py", "http", "127.0.0.1", str(port), "--host-header", "shop.example")
        t.join(timeout=10)
    assert got["status"] == 200 and got["body"] == "shop"
    assert b"\r\nHost: shop.example\r\n" in seen[0]
    bad = subprocess.run([sys.executable, str(NODE / "probe.py"), "http", "127.0.0.1", "1",
                          "--host-header", "a\r\nX-Evil: 1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "line breaks" in bad.stdout + bad.stderr


def test_lab_files_check_the_host_header_is_a_name() -> None:
    from portlab.errors import LabError

    data = minimal()
    data["checks"].append({"id": "shop", "title": "the shop by name",
                           "probes": [{"kind": "http", "from": "b", "to": "a.wan", "port": 80,
                                       "host_header": "shop.example", "expect": {}}]})
    assert parse_data(data).checks[-1].probes[0].options["host_header"] == "shop.example"
    data["checks"][-1]["probes"][0]["host_header"] = "shop example"
    with pytest.raises(LabError, match="is not a host name"):
        parse_data(data)


def test_an_answer_from_a_real_web_server_is_described_as_such() -> None:
    """nginx or `python3 -m http.server` names no client: say so, never "node '?'"."""
    def fake_exec(node: str, argv: list[str]) -> ExecResult:
        return ExecResult(0, json.dumps({"state": "open", "status": 200, "body": "<html>",
                                         "kind": "http", "nonce": nonce_of(argv)}) + "\n", "")

    probe = Probe("http", "laptop", "server.lan", 8080, {}, {"status": 200},
                  "checks[0].probes[0]")
    result = run_for("http")(ProbeRun(probe, "laptop", "10.5.0.20", "10.5.0.10", "server.lan",
                                      {"addr": {}, "token": "t"}, FakeNodes(fake_exec)))
    assert result.passed
    assert result.got == "HTTP 200: an HTTP answer, from a server that does not say who it is"


def test_listening_says_which_program_a_process_runs_whatever_its_name(
        greeter: tuple[int, int], tmp_path: Path) -> None:
    """`--program PATH`: each process holding the socket says whether it runs the same bytes
    as PATH. A copy of the program elsewhere is the same program; another one is not."""
    port, _ = greeter
    python = os.path.realpath(sys.executable)
    copy = tmp_path / "sshd"
    copy.write_bytes(Path(python).read_bytes())
    for want, same in ((python, True), (str(copy), True), ("/bin/sh", False)):
        [proc] = tool("probe.py", "listening", "tcp", str(port), "--program", want)[
            "sockets"][0]["processes"]
        assert proc["program"] == python
        assert proc["same_program"] is same, want
    [proc] = tool("probe.py", "listening", "tcp", str(port))["sockets"][0]["processes"]
    assert "same_program" not in proc
    missing = subprocess.run([sys.executable, str(NODE / "probe.py"), "listening", "tcp",
                              str(port), "--program", str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=20)
    assert missing.returncode != 0 and "cannot read" in missing.stdout + missing.stderr


FAKE_SSHD = {**SSHD, "pid": 60, "cmdline": "sshd TCP-LISTEN:22,fork", "program": "/tmp/sshd",
             "same_program": False}


def test_a_program_renamed_sshd_is_not_sshd() -> None:
    """socat copied to /tmp/sshd holds port 22: its name says sshd, its program does not."""
    real = {**SSHD, "program": "/usr/sbin/sshd", "same_program": True}
    assert run_kind(answer(real), {"process": "sshd", "program": "/usr/sbin/sshd"}).passed
    assert run_kind(answer(FAKE_SSHD), {"process": "sshd"}).passed  # a name alone is fooled
    fake = run_kind(answer(FAKE_SSHD), {"process": "sshd", "program": "/usr/sbin/sshd"})
    assert not fake.passed and fake.seen == "wrong-program"
    assert fake.why == ("the program listening there is not /usr/sbin/sshd but /tmp/sshd, "
                        "whatever its name says")
    assert "sshd (pid 60, program /tmp/sshd, user root)" in fake.got
    with pytest.raises(CannotObserve, match="did not say which program"):
        run_kind({"state": "listening", "sockets": [{"local": "0.0.0.0:22", "uid": 0,
                                                     "processes": []}]},
                 {"program": "/usr/sbin/sshd"})


def test_every_socket_on_the_port_must_be_as_expected() -> None:
    """A decoy of the right user and name on 127.0.0.1 beside root's server on the address the
    clients reach: the server is not nobody's, nor sshd."""
    root_web = {"pid": 70, "name": "python3", "uid": 0, "user": "root",
                "cmdline": "python3 -m http.server 8080 --bind 10.0.0.5"}
    decoy = {"pid": 71, "name": "python3", "uid": 65534, "user": "nobody",
             "cmdline": "python3 -m http.server 8080 --bind 127.0.0.1"}
    two = {"state": "listening", "sockets": [
        {"local": "10.0.0.5:8080", "uid": 0, "user": "root", "processes": [root_web]},
        {"local": "127.0.0.1:8080", "uid": 65534, "user": "nobody", "processes": [decoy]}]}
    result = run_kind(two, {"user": "nobody"})
    assert not result.passed and result.seen == "wrong-user"
    assert result.why == ("the program listening there runs as root, not as nobody (on "
                          "10.0.0.5:8080; every socket on the port must be, or a client may "
                          "reach the wrong one)")
    nc_beside = {"state": "listening", "sockets": [
        {"local": "0.0.0.0:22", "uid": 0, "processes": [NC]},
        {"local": "127.0.0.1:22", "uid": 0, "processes": [SSHD]}]}
    named = run_kind(nc_beside, {"process": "sshd"})
    assert not named.passed and "not sshd (on 0.0.0.0:22;" in named.why
    assert run_kind(answer(SSHD), {"process": "sshd", "user": "root"}).passed  # v4 and v6
