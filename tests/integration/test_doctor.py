"""`portlab doctor` on this real machine, and `up` naming the doctor's finding when Docker is
missing. The throwaway node the doctor starts is gone afterwards."""

from __future__ import annotations

import json
import os
import subprocess

from portlab.backend.docker import client as docker_api
from portlab.doctor.checks import every_check
from tests.integration.helpers import portlab

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def _doctor(env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                         dict[str, dict[str, object]]]:
    proc = portlab("doctor", "--json", env=env, timeout=180)
    data = json.loads(proc.stdout)
    assert data["version"] == 1 and data["exit_code"] == proc.returncode, proc.stderr
    return proc, {f["id"]: f for f in data["findings"]}


def test_doctor_on_this_machine(node_image: str) -> None:
    proc, found = _doctor()
    assert proc.returncode in (0, 1), (proc.stdout, proc.stderr)
    assert list(found) == list(every_check())
    assert all(f["status"] in ("ok", "warn") for f in found.values()), found
    assert all(f["fix"] for f in found.values() if f["status"] != "ok")
    server = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    figures = found["docker-reachable"]["figures"]
    assert isinstance(figures, dict) and figures["version"] == server
    assert found["node-image"]["status"] == "ok"  # node_image built it
    assert found["iptables-backend"]["figures"]["image_works"] is True  # type: ignore[index]
    assert found["seal"]["status"] == "ok"  # labs are sealed off this host
    table = found["conntrack"]["figures"]
    assert isinstance(table, dict) and int(table["max"]) > 0  # type: ignore[arg-type]
    # the throwaway node is removed
    left = docker_api.client().containers.list(all=True, filters={"label": "portlab.doctor"})
    assert left == []
    text = portlab("doctor", timeout=180)
    assert text.returncode == proc.returncode
    assert "  OK    docker-reachable   Docker " in text.stdout
    assert f"(exit {proc.returncode})" in text.stdout.splitlines()[-1]


def test_doctor_without_docker_exits_3_naming_docker_reachable() -> None:
    proc, found = _doctor(NO_DOCKER)
    assert proc.returncode == 3
    assert found["docker-reachable"]["status"] == "fail"
    assert "unix:///nonexistent.sock" in str(found["docker-reachable"]["what"])
    text = portlab("doctor", env=NO_DOCKER)
    assert text.returncode == 3
    assert "  FAIL  docker-reachable   Docker is not running" in text.stdout


def test_doctor_says_a_missing_node_image_is_not_built(docker_ready: None) -> None:
    repo = f"portlab-test-{os.getpid()}/doctor"
    assert not docker_api.client().images.list(name=repo)
    proc, found = _doctor({"PORTLAB_NODE_REPO": repo})
    assert proc.returncode in (1, 3)
    image = found["node-image"]
    assert image["status"] == "warn" and "is not built" in str(image["what"])
    assert str(image["what"]).startswith(f"{repo}:")
    assert "portlab image build" in str(image["fix"])


def test_up_without_docker_names_the_finding() -> None:
    proc = portlab("up", "forwarding", env=NO_DOCKER)
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[-1] == (
        "portlab doctor: FAIL docker-reachable — Docker is not running (nothing answers at "
        "unix:///nonexistent.sock); run `portlab doctor` for the fix")
    assert "Traceback" not in proc.stderr
