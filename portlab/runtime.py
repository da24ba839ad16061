"""Running labs: up, down, status, exec, readiness. State is read from Docker labels only.

Every container and network portlab starts carries `portlab.instance` (and
`portlab.lab`, `portlab.node` / `portlab.network`). There is no state file to
drift: what is running is what Docker says is running, and `down` removes
exactly what carries the instance's label.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

import docker.errors

from portlab import allocate, compose, image, locks, render
from portlab import docker_api as d
from portlab.errors import DockerUnreachable, PortlabError, RuntimeProblem, UsageError
from portlab.lab import Lab
from portlab.progress import Progress

READY_MARK = b"portlab-ready"
FAILED_MARK = b"portlab-failed"
READY_TIMEOUT = 180.0  # a node's own deadline (nodeinit.py) is 150 s


@dataclass
class Instance:
    """One running (or half-started) lab instance, as Docker's labels describe it."""

    name: str
    lab: str
    token: str
    containers: dict[str, Any] = field(default_factory=dict)  # node -> Container
    networks: dict[str, Any] = field(default_factory=dict)  # lab network -> Network

    @property
    def project(self) -> str:
        return render.project_name(self.name)

    def subnets(self) -> dict[str, IPv4Network]:
        """Every subnet of the instance, virtual ones (like a VPN tunnel) included."""
        for container in self.containers.values():
            raw = d.labels_of(container).get(d.LABEL_SUBNETS)
            if raw:
                return {k: IPv4Network(v) for k, v in json.loads(raw).items()}
        out = {}
        for name, net in self.networks.items():
            subnet = net.attrs.get("Labels", {}).get(d.LABEL_SUBNET)
            if subnet:
                out[name] = IPv4Network(subnet)
        return out

    def interfaces(self) -> dict[str, dict[str, str]]:
        """node -> interface name -> address/prefix, from the labels (no inspect needed)."""
        out = {}
        for node, container in sorted(self.containers.items()):
            try:
                out[node] = json.loads(d.labels_of(container).get(d.LABEL_INTERFACES, "{}"))
            except ValueError:
                out[node] = {}
        return out

    def container(self, node: str) -> Any:
        if node not in self.containers:
            known = ", ".join(sorted(self.containers)) or "(none)"
            raise UsageError(f"lab '{self.lab}' (instance {self.name}) has no node '{node}'. "
                             f"Nodes: {known}")
        return self.containers[node]

    def exec(self, node: str, argv: list[str]) -> d.ExecResult:
        container = self.container(node)
        try:
            result = d.exec_in(container, argv, what=f"running {argv[0]} on {node}")
        except DockerUnreachable:
            raise  # Docker itself is gone: it cannot say which node stopped
        except RuntimeProblem:
            require_running(self)  # a node that stopped is the real story
            raise
        if result.exit_code in (KILLED, -1) and _stops_soon(container):
            require_running(self, [node])  # the node was killed under the command
        return result

    def hint(self) -> str:
        """How to get this instance back: start it again, or remove it."""
        flag = "" if self.name == self.lab else f" --instance {self.name}"
        return (f"`portlab up {self.lab}{flag}` removes what is left and starts the lab again "
                f"(changes made on its nodes are lost); `portlab down{flag or ' ' + self.lab}` "
                "removes it")


KILLED = 128 + 9  # the exit code of a command killed by SIGKILL, as when its node is killed


def _stops_soon(container: Any, within: float = 1.0) -> bool:
    """Whether the container is (or within a moment is) no longer running.

    Docker marks a killed container as exited a moment after the commands in it die, so
    right after an exec ended with SIGKILL the container may still say "running".
    """
    deadline = time.monotonic() + within
    while True:
        try:
            with d.guard(f"looking at container {container.name}"):
                container.reload()
        except RuntimeProblem as exc:
            if isinstance(exc, DockerUnreachable):
                raise
            return True  # removed meanwhile
        if container.status != "running" or time.monotonic() > deadline:
            return bool(container.status != "running")
        time.sleep(0.05)


def instances() -> dict[str, Instance]:
    """Every portlab instance Docker knows about, by name."""
    c = d.client()
    found: dict[str, Instance] = {}
    # sparse: no inspect per container, so one removed meanwhile cannot fail the listing
    containers = d.call("listing containers", c.containers.list, all=True, sparse=True,
                        filters=d.scope_filter())
    networks = d.call("listing networks", c.networks.list, filters=d.scope_filter())
    for obj in containers:
        labels = d.labels_of(obj)
        if not labels.get(d.LABEL_INSTANCE):
            continue  # not one of portlab's lab objects (`portlab prune` removes such strays)
        inst = found.setdefault(labels[d.LABEL_INSTANCE], Instance(
            labels[d.LABEL_INSTANCE], labels.get(d.LABEL_LAB, "?"), labels.get(d.LABEL_TOKEN, "")))
        inst.containers[labels.get(d.LABEL_NODE, obj.id)] = obj
    for net in networks:
        labels = net.attrs.get("Labels") or {}
        if not labels.get(d.LABEL_INSTANCE):
            continue
        inst = found.setdefault(labels[d.LABEL_INSTANCE], Instance(
            labels[d.LABEL_INSTANCE], labels.get(d.LABEL_LAB, "?"), labels.get(d.LABEL_TOKEN, "")))
        inst.networks[labels.get(d.LABEL_NETWORK, net.name)] = net
    return found


def find_instance(lab: str | None = None, instance: str | None = None) -> Instance:
    """The one running instance matching lab and/or instance name, or a clear error."""
    running = instances()
    matches = [i for i in running.values()
               if (instance is None or i.name == instance) and (lab is None or i.lab == lab)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        what = f"instance '{instance}'" if instance else (f"lab '{lab}'" if lab else "lab")
        if running:
            names = ", ".join(f"{i.name} ({i.lab})" for i in running.values())
            raise UsageError(f"no running {what}. Running: {names}")
        raise UsageError(f"no running {what}: nothing is up",
                         hint=f"start one with `portlab up {lab or '<lab>'}`")
    names = ", ".join(f"{i.name} ({i.lab})" for i in matches)
    raise UsageError(f"more than one instance is running: {names}",
                     hint="say which with --instance NAME")


def require_running(inst: Instance, nodes: list[str] | None = None) -> None:
    """Raise a clear RuntimeProblem naming each node of the instance that is not running.

    Asks Docker afresh (one listing), so a node killed a moment ago is seen. `nodes`
    defaults to the nodes the instance had when it was found.
    """
    c = d.client()
    listed = d.call("listing containers", c.containers.list, all=True, sparse=True,
                    filters=d.scope_filter(**{d.LABEL_INSTANCE: inst.name}))
    states: dict[str, str] = {}
    for obj in listed:
        node = d.labels_of(obj).get(d.LABEL_NODE, obj.id)
        state = obj.attrs.get("State") or "unknown"
        states[node] = "running" if state == "running" else (obj.attrs.get("Status") or state)
    down = [(node, states.get(node, "its container is gone"))
            for node in sorted(nodes if nodes is not None else inst.containers)
            if states.get(node) != "running"]
    if not down:
        return
    what = "; ".join(f"'{node}': {why}" for node, why in down)
    noun = "node is" if len(down) == 1 else "nodes are"
    raise RuntimeProblem(f"lab '{inst.lab}' (instance {inst.name}): {len(down)} {noun} not "
                         f"running ({what})", hint=inst.hint())


def taken_subnets() -> list[IPv4Network]:
    """Subnets already used by Docker networks on this daemon, and by the host's own routes."""
    c = d.client()
    nets: list[IPv4Network] = []
    for net in d.call("listing networks", c.networks.list):
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            subnet = cfg.get("Subnet")
            if subnet:
                try:
                    parsed = ipaddress.ip_network(subnet, strict=False)
                except ValueError:
                    continue
                if isinstance(parsed, IPv4Network):
                    nets.append(parsed)
    return nets + allocate.host_routes()


# --- up ------------------------------------------------------------------------------------------


def plan(lab: Lab, instance: str, image_tag: str, *, token: str | None = None) -> render.Plan:
    """Allocate subnets against what exists now and fix the token: a Plan ready to render."""
    try:
        subnets = allocate.allocate(lab.requests(), instance, taken_subnets())
    except allocate.AllocationError as exc:
        raise RuntimeProblem(str(exc)) from None
    return render.Plan(lab, instance, subnets, token or render.new_token(), image_tag)


def up(lab: Lab, instance: str, progress: Progress, *, offline: bool | None = None,
       early: compose.Ahead | None = None) -> Instance:
    """Start an instance of `lab` and wait until every node is ready.

    Refuses if the instance is already up and whole; removes it first if it is
    a leftover of an interrupted start. On any failure or interruption,
    removes everything it started.
    """
    render.check_instance_name(instance)
    with locks.instance_lock(d.scope(), instance):
        return _up(lab, instance, progress, offline=offline, early=early)


def _up(lab: Lab, instance: str, progress: Progress, *, offline: bool | None,
        early: compose.Ahead | None) -> Instance:
    existing = instances().get(instance)
    if existing is not None:
        if existing.lab == lab.name and _whole_and_ready(existing, lab):
            raise UsageError(
                f"lab '{lab.name}' is already up as instance '{instance}'; nothing was changed",
                hint=f"use it (`portlab shell <node>`), stop it (`portlab down {instance}`), or "
                     "start another with --instance NAME")
        if existing.lab != lab.name:
            raise UsageError(f"instance name '{instance}' is taken by lab '{existing.lab}'",
                             hint="pick another with --instance NAME")
        progress.note(f"found a half-started instance '{instance}'; removing it first")
        down(instance, progress)
    tag = image.ensure(progress, offline=offline)
    try:
        with progress.phase(f"starting lab '{lab.name}' (instance {instance}, "
                            f"{len(lab.nodes)} nodes)"):
            started = _start(lab, instance, tag, progress, early)
        with progress.phase("waiting until every node is ready"):
            wait_ready(started, progress)
        return started
    except BaseException:
        progress.note(f"cleaning up instance '{instance}' ...")
        try:
            _remove(instance, Progress(quiet=True))
        except Exception as exc:  # keep the original error; say what is left
            why = exc.message if isinstance(exc, PortlabError) else exc
            progress.note(f"could not clean up ({why}); `portlab down --instance {instance}` "
                          "removes what is left")
        raise


def _start(lab: Lab, instance: str, tag: str, progress: Progress,
           early: compose.Ahead | None = None) -> Instance:
    """Create the lab with Compose (`early`: one started ahead for it, used if it fits)."""
    last_error = ""
    for _attempt in range(5):
        # Subnets are allocated inside the slot, so they see the networks of the labs that
        # were created while this one was queued.
        with locks.start_slot(lambda n: progress.detail(
                f"{n} labs are being created on this machine; waiting for a turn")):
            p = plan(lab, instance, tag)
            progress.detail(", ".join(f"{n} {s}" for n, s in p.subnets.items()))
            proc = compose.run(p.project, render.compose(p), compose.UP_ARGS, early=early)
        if proc.returncode == 0:
            inst = instances().get(instance)
            if inst is None:
                raise RuntimeProblem("compose reported success but no container is labelled "
                                     f"for instance '{instance}'")
            return inst
        last_error = (proc.stderr or proc.stdout).strip()
        if "overlap" in last_error.lower():
            # Someone (perhaps another `portlab up` started at the same time) took one of
            # our subnets between allocation and creation: clean up and allocate again.
            progress.detail("a subnet was taken meanwhile; allocating again")
            _remove(instance, Progress(quiet=True))
            continue
        break
    raise RuntimeProblem("docker compose could not start the lab:\n    "
                         + "\n    ".join(last_error.splitlines()[-12:]))


def _whole_and_ready(inst: Instance, lab: Lab) -> bool:
    if set(inst.containers) != {n.name for n in lab.nodes}:
        return False
    if {n.name for n in lab.networks if not n.virtual} - set(inst.networks):
        return False
    with d.guard(f"looking at instance '{inst.name}'"):
        for container in inst.containers.values():
            if container.status != "running":
                return False
            if READY_MARK not in container.logs(stdout=True, stderr=False, tail=50):
                return False
    return True


def wait_ready(inst: Instance, progress: Progress, timeout: float = READY_TIMEOUT) -> None:
    """Wait for every node's "portlab-ready" line by following its log (no polling sleeps)."""
    results: dict[str, tuple[bool, str]] = {}
    done = threading.Event()
    lost = threading.Event()  # the connection to Docker was lost while following a log
    lock = threading.Lock()
    nodes = dict(inst.containers)

    def follow(node: str, container: Any) -> None:
        ok, why = False, ""
        buf = b""
        try:
            # A node that fails prints why (stderr) and the failed mark (stdout), then exits,
            # which ends this stream: read to the end, since the two streams may arrive in
            # either order.
            for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                buf += chunk
                if READY_MARK in buf:
                    ok = True
                    break
        except Exception as exc:  # the container went away, the daemon stopped ...
            why = f"{type(exc).__name__}: {exc}"
        if not ok:
            try:
                container.reload()  # did the node stop, or did Docker itself go away?
            except Exception as exc:
                if d.connection_problem(exc) is not None:
                    lost.set()
            said = buf.decode("utf-8", "replace").replace(FAILED_MARK.decode(), "").strip()
            why = said or why or "it stopped before it was ready, without a word in its log"
        with lock:
            results[node] = (ok, why[-700:])
            ready = sum(1 for good, _ in results.values() if good)
            progress.detail(f"{ready}/{len(nodes)} ready ({node}{'' if ok else ' failed'})")
            if len(results) == len(nodes):
                done.set()

    for node, container in nodes.items():
        threading.Thread(target=follow, args=(node, container), daemon=True).start()
    if not done.wait(timeout):
        missing = sorted(set(nodes) - set(results))
        raise RuntimeProblem(f"nodes not ready after {timeout:.0f}s: {', '.join(missing)}",
                             hint="`docker logs` of those containers says why")
    if lost.is_set():
        raise d.lost_connection("waiting until every node is ready")
    failed = {n: why for n, (ok, why) in results.items() if not ok}
    if failed:
        lines = "\n".join(f"    {n}: {why}" for n, why in sorted(failed.items()))
        raise RuntimeProblem(f"some nodes failed to start:\n{lines}")


# --- down ----------------------------------------------------------------------------------------


@dataclass
class Removed:
    containers: int = 0
    networks: int = 0


def down(instance: str, progress: Progress) -> Removed:
    """Remove every container and network labelled with this instance."""
    removed = _remove(instance, progress)
    locks.forget_stale(d.scope(), instance)
    return removed


def down_all(progress: Progress) -> Removed:
    total = Removed()
    for name in sorted(instances()):
        got = _remove(name, progress)
        total.containers += got.containers
        total.networks += got.networks
    locks.forget_stale(d.scope())
    return total


REMOVE_PASSES = 4


def _remove(instance: str, progress: Progress) -> Removed:
    """Remove the instance's containers, then its networks, until Docker lists none.

    A further pass catches what appeared meanwhile: a container the daemon was
    still creating for a `portlab up` that was killed, or a network that kept an
    endpoint a moment longer. Raises if something is still there at the end.
    """
    removed = Removed()
    problem = ""
    for n in range(REMOVE_PASSES):
        left, problem = _remove_pass(instance, removed)
        if not left:
            break
        if problem:
            time.sleep(0.25 * (n + 1))  # give the daemon a moment to let go of the endpoint
    else:
        hint = (f"`portlab down --instance {instance}` tries again; `docker ps -a` and "
                "`docker network ls` show what is left")
        if "active endpoints" in problem:
            hint = ("if `docker network inspect` of that network lists no containers, Docker "
                    "kept a stale endpoint on it (a known Docker fault, moby/moby#17217, seen "
                    "after dozens of containers went at once): it holds nothing and disturbs "
                    "no lab; restarting the Docker daemon clears it, then " + hint)
        raise RuntimeProblem(f"could not remove everything of instance '{instance}': "
                             f"{problem or 'objects kept reappearing'}", hint=hint)
    progress.detail(f"removed {removed.containers} containers, {removed.networks} networks")
    return removed


def _remove_pass(instance: str, removed: Removed) -> tuple[bool, str]:
    """One pass of _remove. Returns (whether anything was found, the last error)."""
    c = d.client()
    label = d.scope_filter(**{d.LABEL_INSTANCE: instance})
    containers = d.call("listing containers", c.containers.list, all=True, sparse=True,
                        filters=label)
    networks = d.call("listing networks", c.networks.list, filters=label)
    if not containers and not networks:
        return False, ""

    def kill(container: Any) -> int:
        try:
            container.remove(force=True)
            return 1
        except docker.errors.NotFound:
            return 0
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc):
                return 0
            raise

    problem = ""
    with d.guard(f"removing instance '{instance}'"):
        if containers:
            with ThreadPoolExecutor(max_workers=8) as pool:
                removed.containers += sum(pool.map(kill, containers))
        for net in networks:
            try:
                net.remove()
                removed.networks += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:  # e.g. an endpoint still attached: next pass
                problem = f"could not remove network {net.name}: {exc.explanation or exc}"
    return True, problem


# --- status --------------------------------------------------------------------------------------

STATUS_FORMAT = 1


def status(inst: Instance) -> dict[str, Any]:
    """The documented status of one instance (docs/status-json.md)."""
    nodes = []
    images = set()
    present: dict[str, bool] = {}  # image name -> does it still name an image?
    for name in sorted(inst.containers):
        container = inst.containers[name]
        try:
            container.reload()  # the full inspect: image, environment, state
        except docker.errors.NotFound:
            continue
        labels = container.labels
        try:
            interfaces = json.loads(labels.get(d.LABEL_INTERFACES, "{}"))
        except ValueError:
            interfaces = {}
        image_name = (container.attrs.get("Config") or {}).get("Image", "")
        images.add(image_name)
        if image_name not in present:  # deleted under a running lab: the nodes keep their copy
            present[image_name] = image.exists(image_name) if image_name else True
        env = (container.attrs.get("Config") or {}).get("Env") or []
        vpn = any(e.startswith("WG_QUICK_USERSPACE_IMPLEMENTATION=") for e in env)
        nodes.append({
            "name": name,
            "container": container.name,
            "state": container.status,
            "image": image_name,
            "image_present": present[image_name],
            "interfaces": [{"name": k, "address": v} for k, v in interfaces.items()],
            "wireguard": _wireguard(container) if vpn and container.status == "running" else None,
        })
    networks = []
    for name, net in sorted(inst.networks.items()):
        labels = net.attrs.get("Labels") or {}
        networks.append({"name": name, "docker_network": net.name,
                         "subnet": labels.get(d.LABEL_SUBNET, "")})
    states = {n["state"] for n in nodes}
    overall = "running" if states == {"running"} else ("stopped" if not nodes else "degraded")
    return {
        "instance": inst.name,
        "lab": inst.lab,
        "project": inst.project,
        "state": overall,
        "image": sorted(images)[0] if len(images) == 1 else sorted(images),
        "image_present": all(present.values()),
        "networks": networks,
        "nodes": nodes,
    }


def _wireguard(container: Any) -> dict[str, Any]:
    """Which WireGuard implementation the node can use, and what its wg interfaces are.

    `wg show interfaces` names the WireGuard interfaces of either kind (kernel ones by
    netlink, wireguard-go's by their control sockets); the link's kind tells them apart:
    "wireguard" is the kernel module, a TUN device is wireguard-go.
    """
    script = ('printf "%s\\n" "$(cat /run/portlab/wireguard 2>/dev/null)" '
              '"$(wg show interfaces 2>/dev/null)"; ip -j -d link show')
    out = d.exec_in(container, ["sh", "-c", script])
    lines = out.stdout.split("\n", 2)
    available = lines[0].strip() or "unknown"
    wg_names = lines[1].split() if len(lines) > 1 else []
    kinds: dict[str, str] = {}
    try:
        for link in json.loads(lines[2]) if len(lines) > 2 else []:
            kinds[link.get("ifname", "")] = (link.get("linkinfo") or {}).get("info_kind", "")
    except ValueError:
        pass
    interfaces = {name: "kernel" if kinds.get(name) == "wireguard" else "userspace"
                  for name in wg_names}
    return {"available": available, "interfaces": interfaces}


# --- scripts (solutions) -------------------------------------------------------------------------


def run_scripts(inst: Instance, lab: Lab, scripts: dict[str, str],
                where: tuple[str | int, ...] = ("solution",),
                on_output: Callable[[str, str], None] | None = None) -> None:
    """Run a shell script (a template of the lab) on each named node, inside the container, as
    root. `where` is the scripts' key in the lab file, named if a template fails."""
    from portlab.lab import render_text

    context = context_for(inst, lab)
    for node, script in scripts.items():
        text = render_text(lab, (*where, node), script, context)
        result = inst.exec(node, ["sh", "-e", "-c", text])
        if on_output is not None:
            on_output(node, (result.stdout + result.stderr).strip())
        if result.exit_code != 0:
            raise RuntimeProblem(f"the script on {node} failed (exit {result.exit_code}):\n    "
                                 + (result.stderr or result.stdout).strip()[-600:])


def context_for(inst: Instance, lab: Lab) -> dict[str, Any]:
    from portlab.lab import template_context

    return template_context(lab, inst.subnets(), inst.name, inst.token)
