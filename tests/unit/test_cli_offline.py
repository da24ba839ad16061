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
                                     ["image"], ["image", "build"], ["doctor"]])
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
