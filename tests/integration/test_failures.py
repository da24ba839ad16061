"""When things break under a lab, portlab says what happened and how to get back; proved for real.

* Docker goes away, without touching the real daemon: portlab talks to Docker through
  a small unix-socket proxy the test owns (DOCKER_HOST=unix://<tmp>/docker.sock), and
  "the daemon stops" is the proxy cutting every relayed connection and removing its
  socket: before a command, in the middle of `portlab check`, and while `portlab up`
  follows the nodes' logs. Then the way back: the proxy returns, and `status`, `up`
  and `down` work.
* A node container is killed in the middle of `portlab check`, and `shell`/`exec` are
  run on it: the node is named, and the hint (`portlab up ... --instance X`) works.
* The node image is deleted under a running lab (in a scratch repository, so the real
  portlab/node images are never touched): the lab keeps working, `status` says so, and
  the next `up` builds the image again.
* Bad input everywhere: one clear message and exit 2, and nothing is started or removed.

A failing probe is made to wait on purpose (a TCP probe with a long timeout against a
dropped port), so "in the middle of a check" is a window of seconds, found by watching
for the probe's process on the node, never by sleeping.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from portlab import names, runtime
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import image
from portlab.progress import Quiet
from tests.conftest import SESSION_SCOPE
from tests.integration.helpers import POLL, Running, labelled, labs_path, portlab

NOTHING: dict[str, list[Any]] = {"containers": [], "networks": []}
SLOW_CHECK = "fail-slowcheck"  # its check `slow` waits PROBE_WAIT seconds; `closed` fails
SLOW_START = "fail-slowstart"  # its node is ready only once the test opens a gate
PROBE_WAIT = 6
GATE = "/run/portlab-test-go"
LOST = "lost the connection to Docker at unix://"
LOST_HINT = ("hint: start Docker again (e.g. `sudo systemctl start docker`); then `portlab "
             "status` shows what is left, `portlab up LAB` starts a lab again")
NOT_RUNNING = "Docker is not running (nothing answers at unix://"


def no_crash(proc: subprocess.CompletedProcess[str] | Running) -> None:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


# --- labs of the tests' own ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def labs_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("labs")
    slow_check = {
        "name": SLOW_CHECK,
        "title": "A lab whose check takes seconds",
        "summary": "Node b drops TCP port 9, so a probe to it waits for its whole timeout.",
        "networks": {"lan": {"kind": "private"}},
        "nodes": {
            "a": {"interfaces": {"lan": {"network": "lan", "host": 1}}},
            "b": {"interfaces": {"lan": {"network": "lan", "host": 2}},
                  "setup": "iptables -A INPUT -p tcp --dport 9 -j DROP"},
        },
        "checks": [
            {"id": "slow", "title": "b drops port 9",
             "probes": [{"kind": "tcp", "from": "a", "to": "b.lan", "port": 9,
                         "timeout": PROBE_WAIT, "expect": {"state": "filtered"}}]},
            {"id": "closed", "title": "b answers on port 10 (it does not: fails untouched)",
             "probes": [{"kind": "tcp", "from": "a", "to": "b.lan", "port": 10,
                         "expect": {"state": "open"}}]},
        ],
        "untouched": {"fails": ["closed"]},
    }
    slow_start = {
        "name": SLOW_START,
        "title": "A lab that is ready only when the test says so",
        "summary": "Its one service listens once a gate file exists.",
        "networks": {"lan": {"kind": "private"}},
        "nodes": {
            "late": {"interfaces": {"lan": {"network": "lan", "host": 1}},
                     "services": [{"name": "web", "ready": {"tcp": 80}, "run": (
                         f"until [ -e {GATE} ]; do sleep 0.1; done; "
                         "exec portlab-serve http --port 80 --token {{ token }}")}]},
        },
        "checks": [{"id": "web", "title": "the service listens",
                    "probes": [{"kind": "listening", "from": "late", "port": 80}]}],
    }
    return labs_path(root, slow_check, slow_start)


# --- a Docker socket the test can pull out ------------------------------------------------------


class DockerProxy:
    """Relays connections from a unix socket of its own to the real Docker socket.

    `stop()` is the daemon going away as seen from a client: every relayed connection is
    cut (streams that were following a log or an exec end), and the socket is gone, so
    new connections fail. `start()` again is the daemon back. The real daemon, and the
    containers, are untouched throughout.
    """

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.target = target
        self.url = f"unix://{path}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    def start(self) -> DockerProxy:
        self._stopping.clear()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        listener.settimeout(POLL)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                daemon.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    daemon.close()
                    return
                self._sockets += [client, daemon]
            for src, dst in ((client, daemon), (daemon, client)):
                threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)  # a half-close passes through, as exec needs
        except OSError:
            pass

    @property
    def running(self) -> bool:
        return self._listener is not None

    def stop(self) -> None:
        """Cut every relayed connection and remove the socket: "the daemon stopped"."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.path.unlink(missing_ok=True)
        with self._lock:
            cut, self._sockets = self._sockets, []
        for sock in cut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for sockets (a unix socket's path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="portlab-fail-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def proxy(sockdir: Path, docker_ready: None) -> Iterator[DockerProxy]:
    relay = DockerProxy(sockdir / "docker.sock").start()
    try:
        yield relay
    finally:
        if relay.running:
            relay.stop()


def node(instance: str, name: str) -> Any:
    """The container of node `name` of the instance (found by labels, inspected)."""
    found = [c for c in labelled(instance)["containers"]
             if docker_api.labels_of(c).get(docker_api.LABEL_NODE) == name]
    assert len(found) == 1, (instance, name, found)
    return docker_api.client().containers.get(found[0].id)


def probe_running(instance: str, name: str) -> Callable[[], bool]:
    """Whether a `portlab-probe` process runs on the node now: a check is in the middle."""
    container = node(instance, name)

    def running() -> bool:
        rows = container.top(ps_args="-eo pid,args")["Processes"] or []
        return any("portlab-probe" in " ".join(row) for row in rows)
    return running


def open_gate(instance: str) -> None:
    for container in labelled(instance)["containers"]:
        docker_api.client().containers.get(container.id).exec_run(["touch", GATE])


def cleanup(instance: str) -> None:
    """Remove the instance through the real socket, whatever the test left."""
    if labelled(instance) != NOTHING:
        runtime.down(instance, Quiet())


# --- bad input -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_scope(docker_ready: None) -> dict[str, str]:
    """A scope of its own in which nothing is up, whatever other tests are doing."""
    scope = f"{SESSION_SCOPE}-none"
    assert names.SCOPE_NAME.fullmatch(scope), scope
    return {"PORTLAB_SCOPE": scope}


@pytest.mark.parametrize("args", [
    ["status", "nolab"], ["check", "nolab"], ["down", "nolab"], ["solve", "nolab"],
    ["render", "nolab"], ["exec", "router", "--lab", "nolab", "--", "true"],
    ["shell", "router", "--lab", "nolab"],
], ids=lambda a: a[0])
def test_unknown_lab_is_exit_2_and_lists_the_labs(args: list[str],
                                                   empty_scope: dict[str, str]) -> None:
    proc = portlab(*args, env=empty_scope)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "portlab: there is no lab called 'nolab'. Labs: " in proc.stderr
    assert "forwarding" in proc.stderr and "hint: `portlab list`" in proc.stderr
    no_crash(proc)


@pytest.mark.parametrize("args", [
    ["up", "forwarding"], ["check"], ["down"], ["status"], ["solve"], ["show", "forwarding"],
    ["shell", "router"], ["exec", "router", "--", "true"],
], ids=lambda a: a[0])
@pytest.mark.parametrize("name", ["Bad_Name", ""], ids=["Bad_Name", "empty"])
def test_invalid_instance_name_is_exit_2_everywhere(args: list[str], name: str,
                                                     empty_scope: dict[str, str]) -> None:
    at = args.index("--") if "--" in args else len(args)  # exec: options before the command
    proc = portlab(*args[:at], "--instance", name, *args[at:], env=empty_scope)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"portlab: '{name}' is not a valid instance name" in proc.stderr
    assert "hint: use 1-40 lowercase letters, digits and '-'" in proc.stderr
    no_crash(proc)
    if args[0] == "up":  # an empty name is not "the default name": nothing started
        status = portlab("status", "--json", env=empty_scope, check_rc=0)
        assert json.loads(status.stdout)["instances"] == []


def test_invalid_scope_is_exit_2_and_starts_nothing(docker_ready: None) -> None:
    for args in (["up", "forwarding", "--instance", "bad-scope"], ["status"], ["down", "--all"],
                 ["check"]):
        proc = portlab(*args, env={"PORTLAB_SCOPE": "Not Valid"})
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "portlab: PORTLAB_SCOPE='Not Valid' is not valid" in proc.stderr
        assert "hint: use 1-20 lowercase letters, digits and '-'" in proc.stderr
        no_crash(proc)
    assert labelled("bad-scope") == NOTHING


def test_nothing_up_each_command_says_so(empty_scope: dict[str, str]) -> None:
    proc = portlab("check", env=empty_scope)
    assert proc.returncode == 2
    assert "portlab: no running lab: nothing is up" in proc.stderr
    assert "hint: start one with `portlab up <lab>`" in proc.stderr
    proc = portlab("check", "forwarding", env=empty_scope)
    assert proc.returncode == 2
    assert "no running lab 'forwarding': nothing is up" in proc.stderr
    assert "hint: start one with `portlab up forwarding`" in proc.stderr
    for args in (["shell", "router"], ["exec", "router", "--", "true"], ["solve", "forwarding"]):
        proc = portlab(*args, env=empty_scope)
        assert proc.returncode == 2 and "nothing is up" in proc.stderr, (args, proc.stderr)
        no_crash(proc)
    # a plain `down` has nothing to do, which is fine; a named one that is not up is a mistake
    proc = portlab("down", env=empty_scope, check_rc=0)
    assert proc.stdout == "Nothing to remove: no portlab lab is up.\n"
    proc = portlab("down", "--instance", "never-up", env=empty_scope)
    assert proc.returncode == 2
    assert "portlab: no instance 'never-up' is up; nothing was removed" in proc.stderr
    assert "hint: no portlab lab is up at all" in proc.stderr
    proc = portlab("down", "forwarding", env=empty_scope)
    assert proc.returncode == 2
    assert "portlab: no lab 'forwarding' is up; nothing was removed" in proc.stderr
    proc = portlab("check", "--junit", "/nonexistent-dir/report.xml", env=empty_scope)
    assert proc.returncode == 2
    assert ("cannot write the JUnit file /nonexistent-dir/report.xml: its directory does not "
            "exist") in proc.stderr


def test_bad_input_with_a_lab_up(labs_env: dict[str, str], node_image: str) -> None:
    instance = "bad-input"
    portlab("up", SLOW_CHECK, "--instance", instance, env=labs_env, check_rc=0)
    try:
        before = sorted(c.id for c in labelled(instance)["containers"])
        proc = portlab("shell", "toaster", "--instance", instance, env=labs_env)
        assert proc.returncode == 2
        assert (f"portlab: lab '{SLOW_CHECK}' (instance {instance}) has no node 'toaster'. "
                "Nodes: a, b") in proc.stderr
        proc = portlab("check", "--instance", instance, "--only", "slow", "--only", "nope",
                       env=labs_env)
        assert proc.returncode == 2
        assert (f"portlab: lab '{SLOW_CHECK}' has no check 'nope'. Checks: slow, closed"
                in proc.stderr)
        proc = portlab("check", "--instance", "other", env=labs_env)
        assert proc.returncode == 2
        assert f"no running instance 'other'. Running: {instance} ({SLOW_CHECK})" in proc.stderr
        proc = portlab("down", "--instance", "other", env=labs_env)
        assert proc.returncode == 2
        assert "no instance 'other' is up; nothing was removed" in proc.stderr
        assert f"hint: up now: {instance} ({SLOW_CHECK})" in proc.stderr
        proc = portlab("down", "forwarding", env=labs_env)
        assert proc.returncode == 2 and "no lab 'forwarding' is up" in proc.stderr
        # --all with a name would remove more than was named: refused
        proc = portlab("down", "--all", "--instance", instance, env=labs_env)
        assert proc.returncode == 2
        assert "--all removes every lab instance, so it takes no LAB or --instance" in proc.stderr
        proc = portlab("up", "forwarding", "--instance", instance, env=labs_env)
        assert proc.returncode == 2
        assert f"instance name '{instance}' is taken by lab '{SLOW_CHECK}'" in proc.stderr
        no_crash(proc)
        assert sorted(c.id for c in labelled(instance)["containers"]) == before
    finally:
        portlab("down", "--instance", instance, env=labs_env, check_rc=0)
    assert labelled(instance) == NOTHING


# --- Docker not there ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["status"], ["up", "forwarding"], ["check"]],
                         ids=lambda a: a[0])
def test_nothing_listens_at_docker_host(args: list[str], sockdir: Path) -> None:
    """A socket file that nobody listens on any more (a daemon that died): refused."""
    path = sockdir / "docker.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays; connecting to it is refused
    proc = portlab(*args, env={"DOCKER_HOST": f"unix://{path}"})
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert f"portlab: Docker is not running (nothing answers at unix://{path})" in proc.stderr
    assert "hint: start it (e.g. `sudo systemctl start docker`) and try again" in proc.stderr
    no_crash(proc)


def test_permission_denied_on_the_docker_socket(sockdir: Path) -> None:
    """A socket this user may not open: says so, and names the docker group."""
    path = sockdir / "docker.sock"
    guarded = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    guarded.bind(str(path))
    guarded.listen(1)
    argv = [sys.executable, "-m", "portlab", "status"]
    try:
        if os.geteuid() == 0:  # root may open anything: run portlab as nobody instead
            assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root"
            sockdir.chmod(0o755)
            path.chmod(0o600)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        else:
            path.chmod(0)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/",
                              env={**os.environ, "DOCKER_HOST": f"unix://{path}",
                                   "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    finally:
        guarded.close()
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert f"portlab: permission denied talking to Docker at unix://{path}" in proc.stderr
    assert ("hint: add your user to the 'docker' group (then log in again), or run as root"
            in proc.stderr)
    no_crash(proc)


# --- Docker lost in the middle -------------------------------------------------------------------


def test_daemon_lost_mid_check_then_the_way_back(proxy: DockerProxy, labs_env: dict[str, str],
                                                 started: Callable[..., Running],
                                                 node_image: str) -> None:
    instance = "lost-check"
    env = {**labs_env, "DOCKER_HOST": proxy.url}
    try:
        portlab("up", SLOW_CHECK, "--instance", instance, env=env, check_rc=0)
        check = started("check", "--instance", instance, env=env)
        check.wait_for("the slow probe", probe_running(instance, "a"))
        proxy.stop()
        assert check.result() == 3, (check.stdout, check.stderr)
        assert f"portlab: running portlab-probe on a: {LOST}{proxy.path}" in check.stderr
        assert "(did the daemon stop?)" in check.stderr and LOST_HINT in check.stderr
        assert check.stdout == ""  # no half report that looks like results
        no_crash(check)

        # between commands: Docker is simply not there
        proc = portlab("status", env=env)
        assert proc.returncode == 3 and f"{NOT_RUNNING}{proxy.path})" in proc.stderr
        no_crash(proc)

        # the way back: Docker returns; the lab ran on, and every command works again
        proxy.start()
        proc = portlab("status", "--instance", instance, env=env, check_rc=0)
        assert f"{instance}  lab {SLOW_CHECK}, running" in proc.stdout
        proc = portlab("up", SLOW_CHECK, "--instance", instance, env=env)
        assert proc.returncode == 2 and "is already up" in proc.stderr
        proc = portlab("check", "--instance", instance, "--only", "closed", env=env)
        assert proc.returncode == 1 and "FAIL  closed" in proc.stdout, proc.stderr
        proc = portlab("down", SLOW_CHECK, "--instance", instance, env=env, check_rc=0)
        assert proc.stdout.startswith(f"Removed lab '{SLOW_CHECK}' (instance {instance}): 2 "
                                      "containers and 1 network in"), proc.stdout
        assert labelled(instance) == NOTHING
    finally:
        cleanup(instance)


def test_daemon_lost_while_up_waits_for_the_nodes_then_the_way_back(
        proxy: DockerProxy, labs_env: dict[str, str], started: Callable[..., Running],
        node_image: str) -> None:
    instance = "lost-up"
    env = {**labs_env, "DOCKER_HOST": proxy.url}
    try:
        up = started("up", SLOW_START, "--instance", instance, env=env)
        up.wait_for("up to follow the node's log",
                    lambda: "waiting until every node is ready ...\n" in up.err)
        proxy.stop()
        assert up.result() == 3, (up.stdout, up.stderr)
        assert f"portlab: waiting until every node is ready: {LOST}{proxy.path}" in up.stderr
        assert LOST_HINT in up.stderr
        # it could not clean up without Docker, and says what removes the rest
        assert (f"could not clean up (Docker is not running (nothing answers at "
                f"unix://{proxy.path})); `portlab down --instance {instance}` removes what is "
                "left") in up.stderr
        assert "failed to start" not in up.stderr  # the node did nothing wrong
        no_crash(up)
        assert labelled(instance) != NOTHING

        # As a daemon that stops takes its containers with it (unless live-restore):
        for container in labelled(instance)["containers"]:
            docker_api.client().containers.get(container.id).kill()

        proxy.start()
        proc = portlab("status", "--instance", instance, env=env, check_rc=0)
        assert f"{instance}  lab {SLOW_START}, degraded" in proc.stdout
        assert "late       exited" in proc.stdout
        again = started("up", SLOW_START, "--instance", instance, env=env)
        again.wait_for("the new lab to wait for readiness",
                       lambda: "waiting until every node is ready ...\n" in again.err)
        open_gate(instance)
        assert again.result() == 0, (again.stdout, again.stderr)
        assert f"found a half-started instance '{instance}'; removing it first" in again.stderr
        assert f"is up as instance '{instance}'" in again.stdout
        portlab("down", "--instance", instance, env=env, check_rc=0)
        assert labelled(instance) == NOTHING
    finally:
        cleanup(instance)


# --- a node container killed ---------------------------------------------------------------------


def test_node_killed_mid_check_is_named_and_up_recovers(labs_env: dict[str, str],
                                                        started: Callable[..., Running],
                                                        node_image: str) -> None:
    instance = "killed-node"
    hint = (f"hint: `portlab up {SLOW_CHECK} --instance {instance}` removes what is left and "
            f"starts the lab again (changes made on its nodes are lost); `portlab down "
            f"--instance {instance}` removes it")
    try:
        portlab("up", SLOW_CHECK, "--instance", instance, env=labs_env, check_rc=0)
        check = started("check", "--instance", instance, env=labs_env)
        check.wait_for("the slow probe", probe_running(instance, "a"))
        node(instance, "a").kill()
        assert check.result() == 3, (check.stdout, check.stderr)
        assert (f"portlab: lab '{SLOW_CHECK}' (instance {instance}): 1 node is not running "
                "('a': Exited (137)") in check.stderr
        assert hint in check.stderr
        assert check.stdout == ""
        no_crash(check)

        # a shell or a command on the dead node: the same story; the live node still works
        for args in (["shell", "a"], ["exec", "a", "--", "true"]):
            proc = portlab(*args, "--instance", instance, env=labs_env)
            assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
            assert "1 node is not running ('a': Exited (137)" in proc.stderr and hint in proc.stderr
            no_crash(proc)
        portlab("exec", "b", "--instance", instance, "--", "true", env=labs_env, check_rc=0)

        # follow the hint: a fresh instance, checked as new
        old = {c.id for c in labelled(instance)["containers"]}
        proc = portlab("up", SLOW_CHECK, "--instance", instance, env=labs_env, check_rc=0)
        assert f"found a half-started instance '{instance}'; removing it first" in proc.stderr
        assert not old & {c.id for c in labelled(instance)["containers"]}
        proc = portlab("check", "--instance", instance, env=labs_env)
        assert proc.returncode == 1, (proc.stdout, proc.stderr)
        assert "PASS  slow" in proc.stdout and "FAIL  closed" in proc.stdout
        portlab("down", "--instance", instance, env=labs_env, check_rc=0)
        assert labelled(instance) == NOTHING
    finally:
        cleanup(instance)


# --- the image deleted under a running lab -------------------------------------------------------


@pytest.fixture
def scratch_repo(docker_ready: None) -> Iterator[str]:
    """A node repository of this test's own; every image of it is removed afterwards."""
    repo = f"portlab-test-{os.getpid()}/node"
    seen: set[str] = set()
    yield repo
    c = docker_api.client()
    for img in c.images.list(name=repo):
        seen.add(img.id)
        for tag in img.tags:
            if tag.startswith(f"{repo}:"):
                c.images.remove(tag)
    for img in image.leftovers([repo]):
        seen.add(img.id)
    for image_id in seen:  # never forced: an image another repository also names stays
        try:
            c.images.remove(image_id)
        except docker.errors.APIError:
            pass
    assert not c.images.list(name=repo)


def test_image_deleted_under_a_running_lab(scratch_repo: str, labs_env: dict[str, str],
                                           node_image: str) -> None:
    env = {**labs_env, "PORTLAB_NODE_REPO": scratch_repo}
    first, second = "img-gone", "img-again"
    c = docker_api.client()
    try:
        portlab("up", SLOW_CHECK, "--instance", first, env=env, check_rc=0)
        status = json.loads(portlab("status", "--json", "--instance", first, env=env).stdout)
        (row,) = status["instances"]
        tag = row["image"]
        assert tag.startswith(f"{scratch_repo}:") and row["image_present"] is True
        image_id = c.images.get(tag).id

        c.images.remove(tag, force=True)  # `docker rmi -f TAG` under the running lab
        with pytest.raises(docker.errors.ImageNotFound):
            c.images.get(tag)

        # the lab runs on: its containers hold the image
        proc = portlab("check", "--instance", first, env=env)
        assert proc.returncode == 1 and "FAIL  closed" in proc.stdout, (proc.stdout, proc.stderr)
        assert node(first, "a").image.id == image_id
        # status says what happened, in JSON and in words
        status = json.loads(portlab("status", "--json", "--instance", first, env=env).stdout)
        (row,) = status["instances"]
        assert row["state"] == "running" and row["image"] == tag
        assert row["image_present"] is False
        assert all(n["image_present"] is False and n["image"] == tag for n in row["nodes"])
        proc = portlab("status", "--instance", first, env=env, check_rc=0)
        assert (f"  image {tag} was deleted while the lab ran:\n  its nodes keep running on "
                "their own copy; the next `portlab up` builds it again") in proc.stdout

        # the way back: the next `up` builds the image again by itself
        proc = portlab("up", SLOW_CHECK, "--instance", second, env=env, check_rc=0)
        assert f"adding portlab's tools to the base: {scratch_repo}:" in proc.stderr
        c.images.get(tag)
        for name in (first, second):
            status = json.loads(portlab("status", "--json", "--instance", name, env=env).stdout)
            assert status["instances"][0]["image_present"] is True
        for name in (first, second):
            portlab("down", "--instance", name, env=env, check_rc=0)
            assert labelled(name) == NOTHING
    finally:
        cleanup(first)
        cleanup(second)


# --- no registry, no mmdebstrap ------------------------------------------------------------------


def test_offline_build_without_mmdebstrap_says_what_to_install(tmp_path: Path,
                                                               scratch_repo: str,
                                                               docker_ready: None) -> None:
    """`image build --offline --force` on a PATH without mmdebstrap stops before it builds
    anything (so the real base image is never touched) and says what to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    assert shutil.which("mmdebstrap", path=str(empty)) is None  # what portlab will see
    base = image.base_tag()
    before = docker_api.client().images.get(base).id
    proc = portlab("image", "build", "--offline", "--force",
                   env={"PATH": str(empty), "PORTLAB_NODE_REPO": scratch_repo})
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert ("portlab: no container registry is reachable and mmdebstrap is not installed, so the "
            "node image cannot be built") in proc.stderr
    assert ("hint: install it (`sudo apt-get install -y mmdebstrap`), or make a registry "
            "reachable for the Dockerfile path") in proc.stderr
    no_crash(proc)
    assert docker_api.client().images.get(base).id == before
