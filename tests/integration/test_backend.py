"""The backend seam's node operations on real containers: streaming exec, copy, logs.

Streaming is what `portlab trace` and demos build on: a command's output is read line by
line while it runs, and ending the stream ends the command on the node too, whether the
reader stops early, the command ends by itself, or the reader's process gets Ctrl-C.
Copying files onto a node is what grading builds on: content, mode and owner arrive.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab import runtime
from portlab.backend.base import FileCopy
from portlab.runtime import Instance
from tests.integration.helpers import PATIENCE, lab_running, labs_path

LAB = "backend-bits"
INSTANCE = "t-backend"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory, node_image: str,
         monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Instance]:
    lab = {"name": LAB, "title": "Two nodes", "summary": "For the backend's own tests.",
           "networks": {"lan": {"kind": "private"}},
           "nodes": {"a": {"interfaces": {"lan": {"network": "lan", "host": 1}}},
                     "b": {"interfaces": {"lan": {"network": "lan", "host": 2}}}},
           "checks": [{"id": "ping", "title": "b listens on nothing",
                       "probes": [{"kind": "listening", "from": "b", "port": 9,
                                   "expect": {"listening": False}}]}]}
    env = labs_path(tmp_path_factory.mktemp("labs"), lab)
    for key, value in env.items():
        monkeypatch_module.setenv(key, value)
    with lab_running(LAB, INSTANCE) as running:
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def processes(inst: Instance, node: str, word: str) -> list[str]:
    ps = inst.exec(node, ["ps", "-eo", "pid,args"]).stdout.splitlines()[1:]
    return [line for line in ps if word in line and "ps -eo" not in line]


TICKER = ["sh", "-c", 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done']


def test_a_stream_gives_lines_as_they_come_and_stopping_ends_the_command(
        inst: Instance) -> None:
    with inst.stream("a", TICKER) as stream:
        lines = []
        for line in stream:
            lines.append(line)
            if len(lines) == 3:
                break
        assert processes(inst, "a", "tick")  # still running while the reader holds it
    assert lines == ["tick 0", "tick 1", "tick 2"]
    assert processes(inst, "a", "tick") == []
    assert stream.exit_code is not None  # it was ended, and Docker says so


def test_a_command_that_ends_gives_its_exit_code_and_stderr(inst: Instance) -> None:
    with inst.stream("a", ["sh", "-c", "echo one; echo two; echo oops >&2; exit 3"]) as s:
        assert list(s) == ["one", "two"]
    assert s.exit_code == 3 and s.stderr.strip() == "oops"


def test_tcpdump_streams_real_packets_and_leaves_nothing_running(inst: Instance) -> None:
    b = inst.info.nodes["b"].interfaces["lan"].split("/")[0]
    seen = []
    with inst.stream("b", ["tcpdump", "-l", "-n", "-i", "lan", "icmp"]) as stream:
        pinger = subprocess.Popen([sys.executable, "-m", "portlab", "exec", "a", "--instance",
                                   INSTANCE, "--", "ping", "-c", "30", "-i", "0.2", b],
                                  stdout=subprocess.DEVNULL)
        try:
            for line in stream:
                if "ICMP echo request" in line:
                    seen.append(line)
                if len(seen) == 2:
                    break
        finally:
            pinger.kill()
            pinger.wait()
    assert len(seen) == 2 and all(f"> {b}: ICMP echo request" in line for line in seen)
    assert processes(inst, "b", "tcpdump") == []


def test_ctrl_c_in_the_reader_ends_the_command_on_the_node(inst: Instance) -> None:
    code = ("import sys\n"
            "from portlab import runtime\n"
            f"inst = runtime.instances()[{INSTANCE!r}]\n"
            f"with inst.stream('a', {TICKER!r}) as s:\n"
            "    for line in s:\n"
            "        print(line, flush=True)\n")
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    assert reader.stdout is not None
    assert reader.stdout.readline().startswith("tick")
    reader.send_signal(signal.SIGINT)
    reader.wait(timeout=PATIENCE)
    deadline = time.monotonic() + 10
    while processes(inst, "a", "tick") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes(inst, "a", "tick") == []


def test_files_are_copied_with_their_mode_and_folders(inst: Instance) -> None:
    inst.copy("a", {"/etc/portlab-test/deep/wg0.conf": FileCopy(b"[Interface]\nkey = 1\n", 0o600),
                    "/etc/portlab-test/run.sh": FileCopy(b"#!/bin/sh\necho ran\n", 0o755)})
    got = inst.exec("a", ["stat", "-c", "%a %U %n", "/etc/portlab-test/deep/wg0.conf",
                          "/etc/portlab-test/run.sh"]).stdout.split("\n")
    assert got[:2] == ["600 root /etc/portlab-test/deep/wg0.conf",
                       "755 root /etc/portlab-test/run.sh"]
    assert inst.exec("a", ["cat", "/etc/portlab-test/deep/wg0.conf"]).stdout == \
        "[Interface]\nkey = 1\n"
    assert inst.exec("a", ["/etc/portlab-test/run.sh"]).stdout == "ran\n"


def test_logs_hold_the_ready_line(inst: Instance) -> None:
    node = runtime.instances()[INSTANCE].info.nodes["b"]
    assert b"portlab-ready" in b"".join(inst.backend.logs(node, tail=20))
