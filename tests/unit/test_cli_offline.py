"""CLI behaviour that needs no Docker daemon: help, lab commands, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("command", [[], ["list"], ["show"], ["up"], ["down"], ["status"],
                                     ["check"], ["solve"], ["render"], ["shell"], ["exec"],
                                     ["image"], ["image", "build"], ["doctor"], ["trace"],
                                     ["demo"]])
def test_every_command_has_help(command: list[str]) -> None:
    proc = run(*command, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_list_and_show_work_without_docker() -> None:
    assert "forwarding" in run("list", env=NO_DOCKER).stdout
    proc = run("show", "forwarding", env=NO_DOCKER)
    assert proc.returncode == 0
    assert "[router]" in proc.stdout and "198.51.100.1" in proc.stdout


def test_unknown_lab_lists_the_labs() -> None:
    proc = run("up", "forwardin", env=NO_DOCKER)
    assert proc.returncode == 2
    assert "no lab called 'forwardin'" in proc.stderr and "forwarding" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["up", "forwarding"], ["status"], ["check"], ["down"]])
def test_docker_not_running_is_a_clear_runtime_error(command: list[str]) -> None:
    proc = run(*command, env=NO_DOCKER)
    assert proc.returncode == 3, proc.stderr
    assert "Docker is not running" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_instance_name_is_a_usage_error() -> None:
    proc = run("render", "forwarding", "--instance", "Not Valid", env=NO_DOCKER)
    assert proc.returncode == 2 and "not a valid instance name" in proc.stderr


def test_a_lab_without_a_demo_says_which_labs_have_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tests.unit.labfiles import text_of

    labs = tmp_path / "labs"
    (labs / "mini").mkdir(parents=True)
    (labs / "mini" / "lab.yaml").write_text(text_of({
        "name": "mini", "title": "Mini", "summary": "Two nodes.",
        "networks": {"net": {"kind": "public", "prefer": "198.51.100.0/24"}},
        "nodes": {"a": {"interfaces": {"wan": {"network": "net", "host": 1}}},
                  "b": {"interfaces": {"wan": {"network": "net", "host": 2}}}},
        "checks": [{"id": "c", "title": "t", "probes": [
            {"kind": "tcp", "from": "b", "to": "a.wan", "port": 22,
             "expect": {"state": "open"}}]}]}))
    for lab in ("forwarding", "vpn"):
        shutil.copytree(f"labs/{lab}", labs / lab)
    proc = run("demo", "mini", env={**NO_DOCKER, "PORTLAB_LABS_PATH": str(labs)})
    assert proc.returncode == 2, proc.stderr
    assert "lab 'mini' has no demo" in proc.stderr
    assert "labs with a demo: " in proc.stderr and "forwarding" in proc.stderr


def test_trace_and_demo_refuse_a_page_open_to_the_network() -> None:
    for verb in (["trace", "forwarding"], ["demo", "forwarding"]):
        proc = run(*verb, "--web", "--bind", "0.0.0.0", env=NO_DOCKER)
        assert proc.returncode == 2, proc.stderr
        assert "--allow-remote" in proc.stderr


def test_list_follows_the_learning_path() -> None:
    out = run("list", env=NO_DOCKER).stdout
    names = [line.split()[0] for line in out.splitlines() if line[:3].startswith("  ")
             and not line[2].isspace()]
    assert names == ["ports", "nat", "forwarding", "tcp-udp", "firewall", "scan",
                     "reverse-proxy", "hairpin", "ssh-tunnel", "ipv6", "vpn", "vpn-privacy",
                     "vpn-portforward"]
