"""Labs are sealed, side by side and from the host, and never touch the host's own network.

* Every lab at once, one instance each: from every node, nothing outside its
  own lab answers, not the Docker host's addresses (its docker0 address, its
  own address, the lab bridges' gateway addresses) and not any other running
  lab. Every route of every node goes through the lab's own nodes. The host
  has no address on a lab bridge and no route into a lab. Traffic goes only
  to this machine's addresses and to lab containers, never beyond.
* A full up / solve / check / down leaves the host's firewall (iptables,
  legacy and nft backends, outside Docker's own chains), its routes and its
  network sysctls as they were, and changes none of them while the lab runs.
* Two instances of one lab and another lab run at once without interfering,
  and allocation steps around Docker networks that someone else created on
  the very subnets portlab would have picked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from portlab import core, runtime
from portlab.backend.docker import client as docker_api
from portlab.model.types import Lab
from portlab.progress import Quiet
from portlab.runtime import run_checks

LABS = [lab.name for lab in core.labs()]


def _up_all(names: dict[str, str]) -> dict[str, runtime.Instance]:
    """Start lab instances in parallel ({instance: lab}); all are up, or none stays."""

    def start(item: tuple[str, str]) -> runtime.Instance:
        instance, lab = item
        return core.up(lab, instance=instance)

    try:
        with ThreadPoolExecutor(len(names)) as pool:
            started = list(pool.map(start, names.items()))
    except BaseException:
        for instance in names:
            runtime.down(instance, Quiet())
        raise
    return {inst.name: inst for inst in started}


def _down(names: list[str]) -> None:
    for instance in names:
        runtime.down(instance, Quiet())


def _addresses(inst: runtime.Instance) -> set[str]:
    lab = core.get_lab(inst.lab)
    return set(inst.binding(lab).context["addr"].values())


def _host_addresses() -> set[str]:
    """This machine's own IPv4 addresses (docker0's among them), loopback left out."""
    links = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    return {a["local"] for link in links for a in link.get("addr_info", [])
            if not a["local"].startswith("127.")}


def _bridge_gateways(inst: runtime.Instance) -> set[str]:
    """The gateway address Docker reserved on each lab network (never held by the host)."""
    out = set()
    for net in inst.info.networks.values():
        found = docker_api.client().networks.get(net.engine_name)
        for cfg in found.attrs["IPAM"]["Config"]:
            out.add(cfg["Gateway"])
    return out


# --- sealed ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_lab(node_image: str) -> Iterator[dict[str, runtime.Instance]]:
    names = {f"seal-{lab}": lab for lab in LABS}
    started = _up_all(names)
    try:
        # Solved, so that every tunnel and forwarding rule a lab can have is in place.
        for inst in started.values():
            core.solve(instance=inst.name)
        yield started
    finally:
        _down(list(names))


# On a node: ping each target once, and TCP-connect to its ports 22 and 80 (an answer is a
# connection or a refusal; silence and "unreachable" are none), all at once, in one process
# per node (a portlab-probe per try would be thousands of Python start-ups).
PROBE_ALL = r"""
import socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

def tcp(t, p):
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect((t, p))
            return f"{t} tcp {p} open"
        except ConnectionRefusedError:
            return f"{t} tcp {p} closed"
        except OSError:
            return None

def ping(t):
    r = subprocess.run(["ping", "-n", "-c1", "-W1", t], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return f"{t} ping answered" if r.returncode == 0 else None

targets = sys.argv[1:]
with ThreadPoolExecutor(48) as pool:
    tries = [pool.submit(ping, t) for t in targets]
    tries += [pool.submit(tcp, t, p) for t in targets for p in (22, 80)]
    for line in (f.result() for f in tries):
        if line:
            print(line)
"""


def test_no_node_reaches_the_host_or_another_lab(every_lab: dict[str, runtime.Instance]) -> None:
    host = _host_addresses()
    assert host, "the host has IPv4 addresses to aim at"
    gateways = set().union(*(_bridge_gateways(i) for i in every_lab.values()))
    jobs = []
    for inst in every_lab.values():
        others = set().union(*(_addresses(o) for o in every_lab.values() if o is not inst))
        targets = sorted(host | gateways | others)
        for node in inst.containers:
            jobs.append((inst, node, targets))

    def probe(job: tuple[runtime.Instance, str, list[str]]) -> list[str]:
        inst, node, targets = job
        res = inst.exec(node, ["python3", "-c", PROBE_ALL, *targets])
        assert res.exit_code == 0, res.stderr
        # "closed" is an answer too: a reset or ICMP port-unreachable from whoever holds it
        return [f"{inst.name}/{node} -> {line}" for line in res.stdout.splitlines() if line]

    # The probe sees what answers: a neighbour in the same lab does.
    home = every_lab["seal-forwarding"]
    neighbour = home.binding(core.get_lab("forwarding")).context["addr"]["router.wan"]
    assert sorted(probe((home, "friend", [neighbour]))) == [
        f"seal-forwarding/friend -> {neighbour} {what}"
        for what in ("ping answered", "tcp 22 closed", "tcp 80 closed")]

    with ThreadPoolExecutor(8) as pool:
        reached = [line for lines in pool.map(probe, jobs) for line in lines]
    assert len(jobs) == sum(len(i.containers) for i in every_lab.values()) >= 12
    assert reached == []


def test_every_route_of_every_node_stays_inside_its_lab(
        every_lab: dict[str, runtime.Instance]) -> None:
    for inst in every_lab.values():
        lab = core.get_lab(inst.lab)
        own = _addresses(inst)
        subnets = [ipaddress.ip_network(s) for s in inst.subnets().values()]
        for node in inst.containers:
            routes = json.loads(inst.exec(node, ["ip", "-j", "-4", "route", "show",
                                                 "table", "all"]).stdout)
            for route in routes:
                if route.get("type") in ("local", "broadcast") or route.get("dev") == "lo":
                    continue
                where = f"{inst.name}/{node}: {route}"
                if "gateway" in route:
                    assert route["gateway"] in own, where
                elif route["dst"] not in ("default", "0.0.0.0/0"):
                    # a link route: to one of the lab's own subnets (a tunnel's included)
                    dst = ipaddress.ip_network(route["dst"], strict=False)
                    assert any(dst.subnet_of(s) for s in subnets), where  # type: ignore[arg-type]
            # whatever is not the lab's own has no way out (asked of the routing table; no
            # packet is sent): an address outside every lab's pools
            probe = inst.exec(node, ["ip", "route", "get", "100.64.0.123"])
            via = re.search(r" via (\S+)", probe.stdout)
            assert probe.exit_code != 0 or (via and via.group(1) in own) or \
                _is_lab_device(lab, probe.stdout), f"{inst.name}/{node}: {probe.stdout}"


def _is_lab_device(lab: Lab, route_get: str) -> bool:
    """A full tunnel (the vpn lab's laptop may route everything into wg0) stays in the lab."""
    dev = re.search(r" dev (\S+)", route_get)
    return bool(dev and dev.group(1).startswith("wg"))


def test_the_host_holds_no_address_and_no_route_in_any_lab(
        every_lab: dict[str, runtime.Instance]) -> None:
    host = _host_addresses()
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, check=True).stdout
    for inst in every_lab.values():
        for subnet in inst.subnets().values():
            assert not any(ipaddress.ip_address(a) in subnet for a in host), (subnet, host)
            assert str(subnet) not in routes, (subnet, routes)
        for net in inst.info.networks.values():
            bridge = "br-" + net.ref[:12]
            addr = subprocess.run(["ip", "-4", "-br", "addr", "show", "dev", bridge],
                                  capture_output=True, text=True, check=True).stdout.split()
            assert addr[2:] == [], f"the host has an address on {bridge}: {addr}"


# --- the host's own firewall, routes and sysctls -----------------------------------------------

DOCKER_CHAINS = re.compile(r"\bDOCKER(-USER|-ISOLATION-STAGE-\d)?\b")
BRIDGE = re.compile(r"\bbr-[0-9a-f]{12}\b")
SYSCTLS = ["net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/all/rp_filter",
           "net/ipv4/conf/all/src_valid_mark", "net/ipv6/conf/all/disable_ipv6",
           "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
           "net/netfilter/nf_conntrack_max", "net/ipv4/ip_unprivileged_port_start"]


def _rules(command: str) -> list[str]:
    """One backend's rules, without counters, dates and what belongs to Docker itself."""
    proc = subprocess.run([command], capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"({command} unavailable: {proc.returncode})"]
    out = []
    for line in proc.stdout.splitlines():
        if line.startswith("#"):
            continue
        line = re.sub(r"\[\d+:\d+\]", "", line).strip()
        if DOCKER_CHAINS.search(line) or BRIDGE.search(line):
            continue  # Docker's own chains, and Docker's rules for its networks' bridges
        out.append(line)
    return out


def _host_state() -> dict[str, Any]:
    """The host's firewall, routes and network sysctls. What Docker does for the bridges of
    its networks (any session's, on this shared daemon) is Docker's, and left out; that the
    host has no address or route in a lab at all is test_the_host_holds_no_address..."""
    state: dict[str, Any] = {}
    for command in ("iptables-save", "ip6tables-save", "iptables-legacy-save"):
        state[command] = _rules(command)
    nft = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    state["nft tables"] = sorted(nft.stdout.splitlines())
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"],
                            capture_output=True, text=True).stdout.splitlines()
    state["routes"] = [r for r in routes if not BRIDGE.search(r)]
    state["rules"] = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout
    for key in SYSCTLS:
        try:
            with open(f"/proc/sys/{key}") as fh:
                state[key] = fh.read().strip()
        except OSError:
            state[key] = None
    return state


def test_a_full_lab_cycle_leaves_the_hosts_firewall_routes_and_sysctls_alone(
        node_image: str) -> None:
    before = _host_state()
    assert before["iptables-save"] and not before["iptables-save"][0].startswith("(")
    instance = "host-untouched"
    core.up("forwarding", instance=instance)
    try:
        core.solve(instance=instance)
        assert core.check(instance=instance).passed
        during = _host_state()
    finally:
        core.down(instance=instance)
    after = _host_state()
    assert during == before
    assert after == before


# --- side by side ------------------------------------------------------------------------------


@pytest.fixture
def squatters() -> Iterator[list[Any]]:
    """Docker networks made by 'someone else', removed afterwards."""
    made: list[Any] = []
    yield made
    for net in made:
        try:
            net.remove()
        except Exception:
            pass


def test_instances_side_by_side_do_not_interfere_and_dodge_foreign_networks(
        node_image: str, squatters: list[Any]) -> None:
    lab = core.get_lab("forwarding")
    # Someone else takes exactly the subnets the next instance would have got.
    would_get = runtime.plan(lab, "side-a", node_image).subnets
    client = docker_api.client()
    import docker.types

    for name, subnet in would_get.items():
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))])
        squatters.append(client.networks.create(
            f"not-portlab-{name}-squatter-{os.getpid()}", ipam=ipam))

    names = {"side-a": "forwarding", "side-b": "forwarding", "side-fw": "firewall"}
    started = _up_all(names)
    try:
        used = [s for inst in started.values() for s in inst.subnets().values()]
        assert not set(used) & set(would_get.values()), "a squatted subnet was handed out"
        assert all(not a.overlaps(b) for i, a in enumerate(used) for b in used[i + 1:]), used

        core.solve(instance="side-a")
        reports = {name: run_checks(core.get_lab(lab_name), started[name])
                   for name, lab_name in names.items()}
        assert reports["side-a"].failed_ids() == []
        # The solution of one instance changed nothing in the other, nor in the other lab.
        assert reports["side-b"].failed_ids() == list(lab.untouched_fails)
        firewall = core.get_lab("firewall")
        assert reports["side-fw"].failed_ids() == list(firewall.untouched_fails)
    finally:
        _down(list(names))
    for net in squatters:
        net.reload()  # still there: portlab removed only its own
