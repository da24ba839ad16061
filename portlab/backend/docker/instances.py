"""Instances on Docker: list them from labels, start them with Compose, remove them.

Every container and network portlab starts carries `portlab.scope` and
`portlab.instance` (and `portlab.lab`, `portlab.node` / `portlab.network`,
the token, subnets, params and interfaces). There is no state file to drift:
what is running is what Docker lists with this scope's labels, and `remove`
removes exactly what carries the instance's label.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from typing import Any

import docker.errors

from portlab.backend.base import InstanceInfo, NetworkInfo, NodeInfo, Removed, SubnetTaken
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import compose, create, models
from portlab.errors import RuntimeProblem
from portlab.model.plan import Plan
from portlab.progress import Progress


def _json(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _node(obj: Any) -> NodeInfo:
    """A node from a sparse container listing (no inspect: a container removed meanwhile
    cannot fail the listing)."""
    attrs = obj.attrs
    labels = docker_api.labels_of(obj)
    names = attrs.get("Names") or [obj.id[:12]]
    return NodeInfo(
        name=labels.get(docker_api.LABEL_NODE) or labels.get(docker_api.LABEL_GRADER) or obj.id,
        ref=obj.id,
        engine_name=str(names[0]).lstrip("/"),
        state=str(attrs.get("State") or "unknown"),
        status=str(attrs.get("Status") or ""),
        image=labels.get(docker_api.LABEL_NODE_IMAGE) or str(attrs.get("Image") or ""),
        interfaces=_json(labels.get(docker_api.LABEL_INTERFACES), {}),
        interfaces6=_json(labels.get(docker_api.LABEL_INTERFACES6), {}),
        vpn=labels.get(docker_api.LABEL_VPN) == "true",
    )


def _subnets(raw: str | None) -> dict[str, IPv4Network]:
    out = {}
    for name, text in _json(raw, {}).items():
        try:
            out[name] = IPv4Network(text)
        except ValueError:
            continue
    return out


def instances() -> dict[str, InstanceInfo]:
    """Every portlab instance of this scope Docker knows about, by name."""
    c = docker_api.client()
    containers = docker_api.call("listing containers", c.containers.list, all=True, sparse=True,
                                 filters=docker_api.scope_filter())
    networks = docker_api.call("listing networks", c.networks.list,
                               filters=docker_api.scope_filter())
    found: dict[str, InstanceInfo] = {}

    def instance(labels: dict[str, str]) -> InstanceInfo:
        name = labels[docker_api.LABEL_INSTANCE]
        if name not in found:
            found[name] = InstanceInfo(name, labels.get(docker_api.LABEL_LAB, "?"),
                                       labels.get(docker_api.LABEL_TOKEN, ""),
                                       compose.project_name(name))
        return found[name]

    for obj in containers:
        labels = docker_api.labels_of(obj)
        if not labels.get(docker_api.LABEL_INSTANCE):
            continue  # not one of portlab's lab objects (`portlab prune` removes such strays)
        if labels.get(docker_api.LABEL_SEAL):
            continue  # a one-shot at start (Compose leaves it behind, exited); no node
        inst = instance(labels)
        if labels.get(docker_api.LABEL_GRADER):
            inst.graders[labels[docker_api.LABEL_GRADER]] = _node(obj)
            continue
        node = _node(obj)
        inst.nodes[node.name] = node
        if not inst.subnets:
            inst.subnets.update(_subnets(labels.get(docker_api.LABEL_SUBNETS)))
        if not inst.params:
            inst.params.update(_json(labels.get(docker_api.LABEL_PARAMS), {}))
        inst.student = inst.student or labels.get(docker_api.LABEL_STUDENT, "")
        inst.key_seed = inst.key_seed or labels.get(docker_api.LABEL_KEY_SEED, "")
        inst.secret = inst.secret or labels.get(docker_api.LABEL_SECRET, "")
    for net in networks:
        labels = net.attrs.get("Labels") or {}
        if not labels.get(docker_api.LABEL_INSTANCE):
            continue
        inst = instance(labels)
        name = labels.get(docker_api.LABEL_NETWORK, net.name)
        subnet = labels.get(docker_api.LABEL_SUBNET, "")
        inst.networks[name] = NetworkInfo(name, net.id, net.name, subnet)
        if name not in inst.subnets and subnet:
            try:
                inst.subnets[name] = IPv4Network(subnet)
            except ValueError:
                pass
    return found


def nodes(instance: str) -> dict[str, NodeInfo]:
    """The nodes of one instance, from one fresh listing."""
    c = docker_api.client()
    mine = docker_api.scope_filter(**{docker_api.LABEL_INSTANCE: instance})
    listed = docker_api.call("listing containers", c.containers.list, all=True, sparse=True,
                             filters=mine)
    out = {}
    for obj in listed:
        labels = docker_api.labels_of(obj)
        if docker_api.LABEL_GRADER in labels or docker_api.LABEL_SEAL in labels:
            continue  # graders (and the one-shot seal) are no nodes of the lab
        node = _node(obj)
        out[node.name] = node
    return out


def taken_subnets() -> list[IPv4Network]:
    """Subnets already used by Docker networks on this daemon, and by the host's own routes."""
    c = docker_api.client()
    nets: list[IPv4Network] = []
    for net in docker_api.call("listing networks", c.networks.list):
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            subnet = cfg.get("Subnet")
            if subnet:
                try:
                    parsed = ipaddress.ip_network(subnet, strict=False)
                except ValueError:
                    continue
                if isinstance(parsed, IPv4Network):
                    nets.append(parsed)
    return nets + host_routes()


def lab_subnets() -> list[tuple[IPv4Network, str]]:
    """The subnets of portlab's lab networks on this daemon, of every scope (their labels),
    each with its instance's name."""
    c = docker_api.client()
    nets: list[tuple[IPv4Network, str]] = []
    for net in docker_api.call("listing networks", c.networks.list,
                               filters={"label": docker_api.LABEL_SUBNET}):
        labels = docker_api.labels_of(net)
        try:
            parsed = ipaddress.ip_network(labels.get(docker_api.LABEL_SUBNET, ""), strict=False)
        except ValueError:
            continue
        if isinstance(parsed, IPv4Network):
            nets.append((parsed, labels.get(docker_api.LABEL_INSTANCE, "")))
    return nets


def host_routes() -> list[IPv4Network]:
    """The host's own connected IPv4 routes (not the default route), from /proc."""
    nets: list[IPv4Network] = []
    try:
        with open("/proc/net/route") as fh:
            next(fh, None)
            for line in fh:
                parts = line.split()
                if len(parts) < 8:
                    continue
                dest = int(parts[1], 16)
                mask = int(parts[7], 16)
                if mask == 0:
                    continue
                to_ip = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                netmask = ipaddress.IPv4Address(mask.to_bytes(4, "little"))
                nets.append(IPv4Network(f"{to_ip}/{netmask}", strict=False))
    except OSError:
        pass
    return nets


def start(plan: Plan, early: compose.Ahead | None = None) -> InstanceInfo:
    """Create the lab: through the Docker API (create.py), or with Compose where
    $PORTLAB_CREATE=compose says so (`early`: a Compose started ahead for it)."""
    if os.environ.get("PORTLAB_CREATE", "api") == "compose":
        _compose_up(plan, early)
        create.wait_seal(plan)
        inst = instances().get(plan.instance)
    else:
        if early is not None:
            early.cancel()
        sealed = create.create(plan)
        try:
            inst = instances().get(plan.instance)  # listed while the seal runs
        finally:
            sealed()
    if inst is None:
        raise RuntimeProblem(f"the lab was created but no container is labelled for instance "
                             f"'{plan.instance}'")
    return inst


def _compose_up(plan: Plan, early: compose.Ahead | None) -> None:
    project = compose.project_name(plan.instance)
    proc = compose.run(project, models.compose(plan), compose.UP_ARGS, early=early)
    if proc.returncode == 0:
        return
    said = (proc.stderr or proc.stdout).strip()
    if "overlap" in said.lower():
        # Someone (perhaps another `portlab up` started at the same time) took one of our
        # subnets between allocation and creation.
        raise SubnetTaken(said.splitlines()[-1] if said else "a subnet is taken")
    raise RuntimeProblem("docker compose could not start the lab:\n    "
                         + "\n    ".join(said.splitlines()[-12:]))


REMOVE_PASSES = 4


_REMOVING: dict[str, threading.Lock] = {}  # one removal of an instance at a time, here
_REMOVING_GUARD = threading.Lock()


def remove(instance: str, progress: Progress) -> Removed:
    """Remove the instance's containers, then its networks, until Docker lists none.

    A further pass catches what appeared meanwhile: a container the daemon was
    still creating for a `portlab up` that was killed, or a network that kept an
    endpoint a moment longer. Raises if something is still there at the end.
    """
    with _REMOVING_GUARD:
        lock = _REMOVING.setdefault(instance, threading.Lock())
    with lock:  # a grade's watch and the grade itself may both remove it: one after the other
        return _remove(instance, progress)


def _remove(instance: str, progress: Progress) -> Removed:
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


def _disconnect_all(c: Any, network_id: str) -> None:
    """Take every container off the network, one after the other (forced: a stopped or
    half-removed container's endpoint goes too)."""
    try:
        attached = list(c.api.inspect_network(network_id).get("Containers") or {})
    except docker.errors.NotFound:
        return
    for container_id in attached:
        try:
            c.api.disconnect_container_from_network(container_id, network_id, force=True)
        except docker.errors.APIError:
            pass  # gone meanwhile, or no longer attached: what was wanted


def _remove_pass(instance: str, removed: Removed) -> tuple[bool, str]:
    """One pass of remove. Returns (whether anything was found, the last error)."""
    c = docker_api.client()
    label = docker_api.scope_filter(**{docker_api.LABEL_INSTANCE: instance})
    containers = docker_api.call("listing containers", c.containers.list, all=True, sparse=True,
                                 filters=label)
    networks = docker_api.call("listing networks", c.networks.list, filters=label)
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
    with docker_api.guard(f"removing instance '{instance}'"):
        # Graders first: each lives in its node's network namespace, and removing a node
        # while its grader still holds that namespace can leave the node's endpoint behind
        # in Docker's store (moby/moby#17217): a network nobody can remove until the daemon
        # restarts. Then the nodes, side by side.
        graders = [x for x in containers if docker_api.labels_of(x).get(docker_api.LABEL_GRADER)]
        if graders:
            with ThreadPoolExecutor(max_workers=8) as pool:
                removed.containers += sum(pool.map(kill, graders))
        # Then each node's endpoints, one at a time: Docker counts a network's endpoints in
        # its store, and endpoints of one network deleted at once (nodes removed side by side)
        # can lose a decrement, which leaves a network that "has active endpoints" with none
        # (moby/moby#42119) until the daemon restarts. With no endpoints left, the nodes'
        # removals, the slow part, go side by side again.
        for net in networks:
            _disconnect_all(c, net.id)
        nodes = [x for x in containers if x not in graders]
        if nodes:
            with ThreadPoolExecutor(max_workers=8) as pool:
                removed.containers += sum(pool.map(kill, nodes))
        for net in networks:
            try:
                net.remove()
                removed.networks += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:  # e.g. an endpoint still attached: next pass
                problem = f"could not remove network {net.name}: {exc.explanation or exc}"
    return True, problem
