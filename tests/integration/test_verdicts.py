"""Pass, fail or error, on real containers: a probe that cannot observe is never a pass.

A lab of the tests' own has one check per probe kind, each with the expectation a broken
probe could pass by accident ("nothing comes back": state not-open, answers false,
listening false), plus one that sends only through an interface (`device:`). Working, it
gives verdicts (the controls). Then its nodes are broken the ways real ones break, and
every check that depends on what broke comes out ERROR, through the real CLI: exit 3,
"ERROR" apart from failures with what to do, `status: error` in JSON and `<error>` in
JUnit. The break is undone between tests.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import labs_path, portlab

LAB = "verdict-kinds"
INSTANCE = "t-verdicts"
PROBE = "/usr/local/bin/portlab-probe"

CHECKS: list[dict[str, Any]] = [
    {"id": "tcp-none", "title": "nothing listens on b:9 (TCP)",
     "probes": [{"kind": "tcp", "from": "a", "to": "b.lan", "port": 9,
                 "expect": {"state": "not-open"}}]},
    {"id": "http-none", "title": "no web server on b:9",
     "probes": [{"kind": "http", "from": "a", "to": "b.lan", "port": 9,
                 "expect": {"answers": False}}]},
    {"id": "minecraft-none", "title": "no game server on b:9",
     "probes": [{"kind": "minecraft", "from": "a", "to": "b.lan", "port": 9,
                 "expect": {"answers": False}}]},
    {"id": "udp-none", "title": "no UDP server on b:9",
     "probes": [{"kind": "udp", "from": "a", "to": "b.lan", "port": 9,
                 "expect": {"answers": False}}]},
    {"id": "listening-none", "title": "nothing listens on a:9",
     "probes": [{"kind": "listening", "from": "a", "port": 9, "expect": {"listening": False}}]},
    {"id": "capture-seen", "title": "b sees a's request on its lan",
     "probes": [{"kind": "capture", "from": "a", "to": "b.lan", "port": 80, "at": "b",
                 "iface": "lan", "expect": {"token": True, "in_clear": True}}]},
    {"id": "device-none", "title": "nothing listens on b:9, asked through lan only",
     "probes": [{"kind": "tcp", "from": "a", "to": "b.lan", "port": 9, "device": "lan",
                 "expect": {"state": "not-open"}}]},
    {"id": "wireguard-none", "title": "a has a WireGuard handshake (it has no tunnel: fails)",
     "probes": [{"kind": "wireguard", "from": "a", "iface": "wg0",
                 "expect": {"handshake_within": 60}}]},
]
WORKING = {c["id"]: "pass" for c in CHECKS} | {"wireguard-none": "fail"}
FROM_A = [c["id"] for c in CHECKS if c["id"] != "wireguard-none"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, node_image: str) -> Iterator[dict[str, str]]:
    lab = {
        "name": LAB, "title": "Every probe kind, for breaking", "summary": "Two nodes.",
        "networks": {"lan": {"kind": "private"}},
        "nodes": {
            "a": {"interfaces": {"lan": {"network": "lan", "host": 1}}},
            "b": {"interfaces": {"lan": {"network": "lan", "host": 2}},
                  "services": [{"name": "web", "ready": {"tcp": 80},
                                "run": "portlab-serve http --port 80 --token {{ token }}"}]},
        },
        "checks": CHECKS,
    }
    found = labs_path(tmp_path_factory.mktemp("labs"), lab)
    portlab("up", LAB, "--instance", INSTANCE, env=found, check_rc=0)
    try:
        yield found
    finally:
        portlab("down", "--instance", INSTANCE, env=found, check_rc=0)


def check(env: dict[str, str], tmp: Path | None = None) -> tuple[int, dict[str, str], str]:
    """`portlab check`: its exit code, each check's status (from --json), and the text (its
    lines joined, as the report wraps them)."""
    extra = ["--junit", str(tmp / "junit.xml")] if tmp else []
    proc = portlab("check", "--instance", INSTANCE, "--json", *extra, env=env)
    data = json.loads(proc.stdout)
    text = portlab("check", "--instance", INSTANCE, env=env).stdout
    return proc.returncode, {c["id"]: c["status"] for c in data["checks"]}, " ".join(text.split())


def on(env: dict[str, str], node: str, script: str) -> None:
    portlab("exec", node, "--instance", INSTANCE, "--", "sh", "-ec", script, env=env,
            check_rc=0)


def test_working_probes_give_verdicts(env: dict[str, str]) -> None:
    code, statuses, _ = check(env)
    assert statuses == WORKING
    assert code == 1  # the one real failure: no tunnel


def test_a_missing_tool_is_an_error_everywhere_it_was_needed(env: dict[str, str],
                                                             tmp_path: Path) -> None:
    on(env, "a", f"mv {PROBE} {PROBE}.off")
    try:
        code, statuses, text = check(env, tmp_path)
    finally:
        on(env, "a", f"mv {PROBE}.off {PROBE}")
    assert statuses == {cid: "error" for cid in FROM_A} | {"wireguard-none": "fail"}
    assert code == 3
    assert "ERROR tcp-none" in text and "FAIL wireguard-none" in text
    assert "could not observe: portlab-probe could not be run on a (exit 12" in text
    assert "not found" in text  # the engine's or the shell's words for it
    assert (f"what to do: the node's own tools are missing or broken: start the lab afresh with "
            f"`portlab down {LAB} --instance {INSTANCE}` and `portlab up {LAB} --instance "
            f"{INSTANCE}`") in text
    assert "0 of 8 checks passed, 1 failed, 7 could not be judged (error)" in text
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "7" and suite.get("failures") == "1"
    assert check(env)[1] == WORKING  # put back: verdicts again


def test_a_tool_that_prints_garbage_is_an_error(env: dict[str, str]) -> None:
    on(env, "a", f"mv {PROBE} {PROBE}.off && printf '#!/bin/sh\\necho half an answer\\n' "
                 f"> {PROBE} && chmod +x {PROBE}")
    try:
        code, statuses, text = check(env)
    finally:
        on(env, "a", f"mv {PROBE}.off {PROBE}")
    assert statuses == {cid: "error" for cid in FROM_A} | {"wireguard-none": "fail"}
    assert code == 3 and "printed something that is not its answer: 'half an answer'" in text


def test_an_interface_that_is_gone_is_an_error_not_nothing_came_back(env: dict[str, str]) -> None:
    """The learner renamed `lan`: a probe told to send through it cannot, and says so."""
    on(env, "a", "ip link set lan down && ip link set lan name gone && ip link set gone up")
    try:
        code, statuses, text = check(env)
    finally:
        on(env, "a", "ip link set gone down && ip link set gone name lan && ip link set lan up")
    assert statuses["device-none"] == "error"
    assert code == 3
    assert "could not observe: portlab-probe on a could not do its work: cannot use interface " \
           "lan" in text
    assert "a has no interface 'lan' any more (was it renamed or deleted?)" in text
    assert check(env)[1] == WORKING


def test_a_missing_wg_tool_is_an_error(env: dict[str, str]) -> None:
    on(env, "a", "mv /usr/bin/wg /usr/bin/wg.off")
    try:
        code, statuses, text = check(env)
    finally:
        on(env, "a", "mv /usr/bin/wg.off /usr/bin/wg")
    assert statuses["wireguard-none"] == "error" and code == 3
    assert "`wg` could not be run on a (exit 127" in text
