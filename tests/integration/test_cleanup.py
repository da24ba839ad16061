"""portlab never leaves a mess, proved on real containers, networks, images and processes.

* Every Docker object a lab consists of carries portlab's labels (scope and
  instance); `portlab down --all` and `portlab prune` remove exactly what
  carries this scope's labels: an unlabelled container and network, and
  another scope's lab, survive them.
* Killing `portlab up` at any point (SIGINT, SIGTERM, SIGKILL) while Compose
  creates networks, once containers exist, while `up` waits for readiness,
  and during a node image build, ends in a clean state: at once for
  SIGINT/SIGTERM (exit 130, "interrupted"), and after the next `portlab up`
  or `down` for SIGKILL. No container, network or Compose process is left
  behind; no tag ever names a half-built image, and the layers of an
  interrupted build are gone after the next build or `portlab prune`.

Bystanders and the scratch image repository are removed in fixtures, whatever happens.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from portlab.backend.docker import client as docker_api
from portlab.backend.docker import compose, image
from portlab.model import catalog
from tests.integration.helpers import POLL, Running, labelled, labs_path, portlab
from tests.unit.labfiles import minimal

COMPOSE_PROJECT = "com.docker.compose.project"
NOTHING: dict[str, list[str]] = {"containers": [], "networks": []}
QUICK_LAB = "cleanup-quick"  # two nodes, one network, ready in a moment
# Its node `a` is ready only once the test opens a gate (a file in the container): until then
# `up` waits for readiness, for as long as the test wants, and a killed `up` always leaves a
# half-started lab behind (never one that got ready meanwhile).
GATED_LAB = "cleanup-gated"
GATE = "/run/portlab-test-go"


# --- helpers -------------------------------------------------------------------------------------


def tidy(run: Running, instance: str, env: dict[str, str]) -> None:
    """After a test, whatever it asserted: stop `run` and remove what is left of `instance`."""
    if run.proc.poll() is None:
        run.proc.kill()
        run.finish()
    if remains(instance) != NOTHING:
        portlab("down", "--instance", instance, env=env)


def _name(obj: Any) -> str:
    """Name of a container (sparse or inspected) or network."""
    names = obj.attrs.get("Names")
    if names:
        return str(names[0]).lstrip("/")
    return str(obj.attrs.get("Name") or obj.id[:12]).lstrip("/")


def remains(instance: str) -> dict[str, list[str]]:
    """Containers and networks of the instance, by portlab's labels or by Compose's project."""
    c = docker_api.client()
    by_project = {"label": [f"{COMPOSE_PROJECT}={compose.project_name(instance)}"]}
    mine = labelled(instance)
    containers = mine["containers"] + c.containers.list(all=True, sparse=True, filters=by_project)
    networks = mine["networks"] + c.networks.list(filters=by_project)
    return {"containers": sorted({_name(x) for x in containers}),
            "networks": sorted({_name(n) for n in networks})}


def compose_processes(project: str) -> list[str]:
    """Command lines of live Compose processes working on this project (`-p PROJECT`)."""
    # -ww: whole command lines (without it ps may cut them at 80 columns, hiding `-p PROJECT`)
    ps = subprocess.run(["ps", "-ww", "-eo", "stat=,args="], capture_output=True, text=True,
                        check=True)
    found = []
    for line in ps.stdout.splitlines():
        stat, _, args = line.strip().partition(" ")
        words = args.split()
        if stat.startswith("Z"):
            continue  # already dead, only not yet reaped: it does nothing any more
        if any(w == "-p" and nxt == project for w, nxt in zip(words, words[1:], strict=False)):
            found.append(args)
    return found


def assert_no_compose_left(project: str) -> None:
    """No Compose process of the project survives portlab (a moment for the kernel's kill)."""
    deadline = time.monotonic() + 15
    while compose_processes(project) and time.monotonic() < deadline:
        time.sleep(POLL)
    assert compose_processes(project) == [], "a Compose process outlived portlab"


def build_leftovers(repo: str) -> list[str]:
    """Images of an unfinished node build for `repo` that no tag holds."""
    c = docker_api.client()
    found = c.images.list(filters={"dangling": True, "label": f"{image.LABEL_BUILDING}={repo}"})
    return sorted(img.short_id for img in found)


def build_containers(repo: str) -> list[str]:
    """The container a node build for `repo` makes its layer in (created, never started)."""
    c = docker_api.client()
    found = c.containers.list(all=True, sparse=True,
                              filters={"label": f"{image.LABEL_BUILDING}={repo}"})
    return sorted(_name(x) for x in found)


def assert_tags_complete(repo: str) -> None:
    """Every image tagged in `repo` is a finished node image: a tag means complete."""
    for img in docker_api.client().images.list(name=repo):
        config = img.attrs.get("Config") or {}
        assert (img.labels or {}).get(image.LABEL_BUILDING) == "", (img.tags, img.labels)
        assert "nodeinit.py" in " ".join(config.get("Entrypoint") or []), (img.tags, config)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labs_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two tiny labs of the tests' own, on PORTLAB_LABS_PATH."""
    root = tmp_path_factory.mktemp("labs")
    quick = minimal()
    quick["name"] = QUICK_LAB
    gated = minimal()
    gated["name"] = GATED_LAB
    (web,) = gated["nodes"]["a"]["services"]
    web["run"] = f"until [ -e {GATE} ]; do sleep 0.1; done; exec {web['run']}"
    gated["networks"]["home"] = {"kind": "private"}  # two networks, as real labs have
    gated["nodes"]["b"]["interfaces"]["lan"] = {"network": "home", "host": 1}
    return labs_path(root, quick, gated)


@pytest.fixture
def started(started: Callable[..., Running], node_image: str) -> Callable[..., Running]:
    """conftest's `started`, once the node image exists (a build is no point to kill at)."""
    return started


@pytest.fixture
def bystanders(node_image: str) -> Iterator[dict[str, Any]]:
    """Objects that are not this scope's labs: prune and `down --all` must leave them alone.

    An unlabelled container and network, and a container and network of another
    scope's lab. Also a stray of this scope (a container and a network labelled with
    the scope but no instance), which `prune` must remove.
    """
    c = docker_api.client()
    tag = f"portlab-test-{os.getpid()}"
    other = {docker_api.LABEL_SCOPE: f"other-{os.getpid()}", docker_api.LABEL_INSTANCE: "foo",
             docker_api.LABEL_LAB: "forwarding"}
    stray = {docker_api.LABEL_SCOPE: docker_api.scope()}
    made: dict[str, Any] = {}

    def box(name: str, labels: dict[str, str] | None = None) -> Any:
        return c.containers.create(node_image, entrypoint=["sleep", "60"], command=[],
                                   name=name, labels=labels or {})

    try:
        made["plain_net"] = c.networks.create(f"{tag}-plain", driver="bridge")
        made["plain_box"] = box(f"{tag}-plain")
        made["other_net"] = c.networks.create(f"{tag}-other", driver="bridge", labels=other)
        made["other_box"] = box(f"{tag}-other", other)
        made["stray_net"] = c.networks.create(f"{tag}-stray", driver="bridge", labels=stray)
        made["stray_box"] = box(f"{tag}-stray", stray)
        yield made
    finally:
        for key in ("plain_box", "other_box", "stray_box", "plain_net", "other_net",
                    "stray_net"):
            if key in made:
                try:
                    if key.endswith("box"):
                        made[key].remove(force=True)
                    else:
                        made[key].remove()
                except docker.errors.NotFound:
                    pass


def open_gate(instance: str) -> None:
    """Let node `a` of the gated lab start its server (and so become ready)."""
    c = docker_api.client()
    (box,) = c.containers.list(filters=docker_api.scope_filter(**{
        docker_api.LABEL_INSTANCE: instance, docker_api.LABEL_NODE: "a"}))
    code, out = box.exec_run(["touch", GATE])
    assert code == 0, out


def exists(obj: Any) -> bool:
    try:
        obj.reload()
        return True
    except docker.errors.NotFound:
        return False


@pytest.fixture
def scratch_repo(node_image: str) -> Iterator[str]:
    """A node image repository of this test alone (PORTLAB_NODE_REPO): removed, tags and
    leftover layers, before and after. portlab/node and portlab/node-base are never touched."""
    repo = f"portlab-test-{os.getpid()}/node"
    assert not repo.startswith("portlab/")
    _remove_repo(repo)
    yield repo
    _remove_repo(repo)


def _remove_repo(repo: str) -> None:
    c = docker_api.client()
    for x in c.containers.list(all=True, filters={"label": f"{image.LABEL_BUILDING}={repo}"}):
        x.remove(force=True)
    for img in c.images.list(filters={"label": f"{image.LABEL_BUILDING}={repo}"}):
        try:
            c.images.remove(img.id)
        except docker.errors.NotFound:
            pass
    for img in c.images.list(name=repo):
        for tag in img.tags:
            if tag.rsplit(":", 1)[0] == repo:
                try:
                    c.images.remove(tag)
                except docker.errors.NotFound:
                    pass


# --- 1. labels, `down --all` and `prune` ----------------------------------------------------------


def test_every_object_of_a_lab_carries_scope_and_instance_labels(node_image: str) -> None:
    instance = "labels"
    lab = catalog.find("forwarding")
    portlab("up", "forwarding", "--instance", instance, check_rc=0)
    try:
        c = docker_api.client()
        by_project = {"label": [f"{COMPOSE_PROJECT}={compose.project_name(instance)}"]}
        containers = c.containers.list(all=True, filters=by_project)
        networks = c.networks.list(filters=by_project)
        assert len(containers) == len(lab.nodes)
        assert len(networks) == len([n for n in lab.networks if not n.virtual])
        for obj in [*containers, *networks]:
            labels = obj.attrs.get("Labels") or obj.labels
            assert labels.get(docker_api.LABEL_SCOPE) == docker_api.scope(), (obj.name, labels)
            assert labels.get(docker_api.LABEL_INSTANCE) == instance, (obj.name, labels)
            assert labels.get(docker_api.LABEL_LAB) == "forwarding", (obj.name, labels)
        # what portlab finds by its labels is exactly the Compose project, no more, no less
        mine = labelled(instance)
        assert sorted(x.id for x in mine["containers"]) == sorted(x.id for x in containers)
        assert sorted(n.id for n in mine["networks"]) == sorted(n.id for n in networks)
    finally:
        portlab("down", "--instance", instance, check_rc=0)
    assert remains(instance) == NOTHING


def test_down_all_removes_only_portlab_objects(bystanders: dict[str, Any]) -> None:
    portlab("up", "forwarding", "--instance", "all-1", check_rc=0)
    try:
        proc = portlab("down", "--all", check_rc=0)
    finally:
        portlab("down", "--instance", "all-1")
    assert "Removed lab 'forwarding' (instance all-1): 4 containers and 2 networks" in \
        proc.stdout
    assert remains("all-1") == NOTHING
    for key in ("plain_box", "plain_net", "other_box", "other_net"):
        assert exists(bystanders[key]), f"`down --all` removed the bystander {key}"


def _listed(stdout: str, title: str) -> set[str]:
    """The names `prune --dry-run` lists after '  TITLE: '."""
    for line in stdout.splitlines():
        if line.startswith(f"  {title}: "):
            return set(line.split(": ", 1)[1].split(", "))
    return set()


def test_prune_removes_this_scopes_labs_and_strays_and_nothing_else(
        bystanders: dict[str, Any]) -> None:
    instance = "prune-me"
    portlab("up", "forwarding", "--instance", instance, check_rc=0)
    try:
        lab = remains(instance)
        assert lab["containers"] and lab["networks"]

        dry = portlab("prune", "--dry-run", check_rc=0)
        assert dry.stdout.startswith("Would remove"), dry.stdout
        containers, networks = _listed(dry.stdout, "containers"), _listed(dry.stdout, "networks")
        assert set(lab["containers"]) | {bystanders["stray_box"].name} <= containers
        assert set(lab["networks"]) | {bystanders["stray_net"].name} <= networks
        for key in ("plain_box", "other_box"):
            assert bystanders[key].name not in containers
        for key in ("plain_net", "other_net"):
            assert bystanders[key].name not in networks
        # a dry run removes nothing
        assert remains(instance) == lab
        assert all(exists(obj) for obj in bystanders.values())

        proc = portlab("prune", check_rc=0)
        assert proc.stdout.startswith("Removed"), proc.stdout
        assert "Traceback" not in proc.stderr
    finally:
        portlab("down", "--instance", instance)
    assert remains(instance) == NOTHING
    assert not exists(bystanders["stray_box"]) and not exists(bystanders["stray_net"])
    for key in ("plain_box", "plain_net", "other_box", "other_net"):
        assert exists(bystanders[key]), f"`prune` removed the bystander {key}"


# --- 2. killing `up` at any point ----------------------------------------------------------------

INT, TERM, KILL = signal.SIGINT, signal.SIGTERM, signal.SIGKILL


def _case(point: str, sig: signal.Signals, then: str | None = None,
          creator: str = "api") -> Any:
    name = f"{point}-{sig.name}" + (f"-then-{then}" if then else "") + \
        ("-compose" if creator == "compose" else "")
    return pytest.param(point, sig, then, creator, id=name)


# After SIGKILL, nothing of portlab runs: the next `up` (which must remove the leftovers
# first) or `down` cleans up. Each point is followed by each of the two. `up` creates labs
# through the Docker API; with PORTLAB_CREATE=compose, Compose does, and is cut off too.
SIGNALS = ((INT, None), (TERM, None), (KILL, "up"), (KILL, "down"))
KILL_CASES = [_case(point, sig, then) for point in ("networks", "containers", "waiting")
              for sig, then in SIGNALS] + \
    [_case("networks", sig, then, "compose") for sig, then in SIGNALS]


def files_left(tmp: Path) -> list[str]:
    """What portlab left in its temporary directory, apart from the machine-wide lock files
    that are meant to stay (the image build lock and the fixed set of start slots)."""
    meant = re.compile(r"portlab-locks(/image\.lock|/start-\d+\.lock)?")
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*")
                  if not meant.fullmatch(str(p.relative_to(tmp))))


@pytest.mark.parametrize(("point", "sig", "then", "creator"), KILL_CASES)
def test_killed_up_leaves_nothing_behind(point: str, sig: signal.Signals, then: str | None,
                                         creator: str, started: Callable[..., Running],
                                         labs_env: dict[str, str], tmp_path: Path) -> None:
    """Signal `up` at a point of its work; SIGKILL then `up` again or `down`: all clean.

    Points: Compose is creating the lab's networks; some of its containers exist; every
    node runs and `up` waits for readiness (the gated lab's node `a` is not ready until
    the test opens its gate, so that wait lasts as long as the test wants).

    Nor is anything left on the host's disk: portlab runs with a temporary directory of its
    own here, which holds only the lock files meant to stay (the instance lock a SIGKILL
    left is removed by the next `up` or `down` of that instance).
    """
    labs_env = {**labs_env, "TMPDIR": str(tmp_path), "PORTLAB_CREATE": creator}
    instance = f"cut-{point}-{sig.name[3:].lower()}" + (f"-{then}" if then else "") + \
        ("-c" if creator == "compose" else "")
    project = compose.project_name(instance)
    run = started("up", GATED_LAB, "--instance", instance, env=labs_env)
    try:
        if point == "networks":
            run.wait_for("a network exists", lambda: bool(labelled(instance)["networks"]))
            if creator == "compose":
                # Compose is still at work (which also shows that compose_processes sees it)
                assert compose_processes(project), \
                    "Compose is not running while it creates the lab"
        elif point == "containers":
            run.wait_for("a container exists", lambda: bool(labelled(instance)["containers"]))
        else:
            def all_running() -> bool:
                boxes = labelled(instance)["containers"]
                return len(boxes) == 2 and all(b.attrs.get("State") == "running" for b in boxes)
            run.wait_for("every node runs", all_running)
            run.wait_for("`up` waits for readiness",
                         lambda: run.said("waiting until every node is ready"))
        code = run.stop(sig)

        if sig != KILL:
            assert code == 130, (code, run.stdout, run.stderr)
            assert "interrupted" in run.stderr
            assert "Traceback" not in run.stderr and "internal error" not in run.stderr
            assert remains(instance) == NOTHING
            assert_no_compose_left(project)
            assert files_left(tmp_path) == []
            return

        assert code == -signal.SIGKILL
        assert_no_compose_left(project)  # the kernel killed it with portlab (PR_SET_PDEATHSIG)
        assert remains(instance) != NOTHING  # nothing could clean up in-process
        if then == "up":
            again = started("up", GATED_LAB, "--instance", instance, env=labs_env)
            again.wait_for("the new lab waits for readiness",
                           lambda: again.said("waiting until every node is ready"))
            open_gate(instance)
            assert again.result() == 0, (again.stdout, again.stderr)
            assert f"is up as instance '{instance}'" in again.stdout
            assert "found a half-started instance" in again.stderr
            portlab("down", "--instance", instance, env=labs_env, check_rc=0)
        else:
            down = portlab("down", "--instance", instance, env=labs_env, check_rc=0)
            assert down.stdout.startswith("Removed "), down.stdout
            assert "Traceback" not in down.stderr
        assert remains(instance) == NOTHING
        assert_no_compose_left(project)
        assert files_left(tmp_path) == []
    finally:
        tidy(run, instance, labs_env)


@pytest.mark.parametrize("sig", [INT, TERM, KILL], ids=lambda s: s.name)
def test_killed_image_build_leaves_no_half_built_image(sig: signal.Signals, scratch_repo: str,
                                                       started: Callable[..., Running],
                                                       labs_env: dict[str, str]) -> None:
    """Signal `up` while it builds the node image (in a scratch repository), with the
    build's container made and the layer not yet committed (PORTLAB_BUILD_HOLD holds it
    there).

    SIGINT/SIGTERM: exit 130, and the build's container is gone. SIGKILL: the
    container stays; `portlab up` again removes it, builds the image and starts
    the lab. No tag ever names an unfinished image.
    """
    instance = f"cut-build-{sig.name[3:].lower()}"
    env = {**labs_env, "PORTLAB_NODE_REPO": scratch_repo}
    run = started("up", QUICK_LAB, "--instance", instance,
                  env={**env, "PORTLAB_BUILD_HOLD": "60"})
    try:
        run.wait_for("the node image build", lambda: run.said(f"the base: {scratch_repo}:"))
        run.wait_for("the build's container", lambda: bool(build_containers(scratch_repo)))
        code = run.stop(sig)
        assert_tags_complete(scratch_repo)
        assert not docker_api.client().images.list(name=scratch_repo), "a tag was made"
        assert remains(instance) == NOTHING

        if sig != KILL:
            assert code == 130, (code, run.stdout, run.stderr)
            assert "interrupted" in run.stderr
            assert "Traceback" not in run.stderr and "internal error" not in run.stderr
            assert build_containers(scratch_repo) == [], run.stderr
            proc = portlab("prune", env=env, check_rc=0)
            assert "Traceback" not in proc.stderr
        else:
            assert code == -signal.SIGKILL
            assert build_containers(scratch_repo), "the killed build left no container"
            again = portlab("up", QUICK_LAB, "--instance", instance, env=env)
            assert again.returncode == 0, (again.stdout, again.stderr)
            assert "left by an interrupted build" in again.stderr
            assert f"is up as instance '{instance}'" in again.stdout
            assert docker_api.client().images.list(name=scratch_repo), "no image was built"
            portlab("down", "--instance", instance, env=env, check_rc=0)
        assert build_leftovers(scratch_repo) == []
        assert build_containers(scratch_repo) == []
        assert_tags_complete(scratch_repo)
        assert remains(instance) == NOTHING
    finally:
        tidy(run, instance, env)

