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
* Over IPv6 too: a dual-stack node reaches neither the host (its global and link-local
  addresses, with a node's own on-link routes to them; a listener on the host counts every
  connection) nor another instance's IPv6 addresses, and on each of its links only its own
  lab's nodes answer the all-nodes multicast. The host has IPv6 on no lab bridge.
* Two instances of one lab and another lab run at once without interfering,
  and allocation steps around Docker networks that someone else created on
  the very subnets portlab would have picked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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
    lab = inst.load_lab()
    return set(inst.binding(lab).context["addr"].values())


def _addresses6(inst: runtime.Instance) -> set[str]:
    lab = inst.load_lab()
    return set(inst.binding(lab).addresses6.values())


def _bridge(net: Any) -> str:
    """The host's name for a lab network's bridge (an IPv6 network names its own)."""
    found = docker_api.client().networks.get(net.engine_name)
    return str(found.attrs["Options"].get("com.docker.network.bridge.name")
               or "br-" + found.id[:12])


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
    names["seal-ipv6-b"] = "ipv6"  # a second IPv6 instance: its /64s, not the first's
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


# On a dual-stack node: TCP to PORT and a ping, at each of the host's global IPv6 addresses and
# each other instance's, by the node's routes and then by an on-link route of its own through
# each interface (a learner is root on a node: routes are theirs to add); at each of the host's
# link-local addresses through each interface; and who answers the all-nodes multicast there.
PROBE6 = r"""
import json, re, socket, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

port = int(sys.argv[1])
globals_, links, ifaces = (a.split(",") if a else [] for a in sys.argv[2:5])
found = []

def tcp(addr, scope=0):
    with socket.socket(socket.AF_INET6) as s:
        s.settimeout(1)
        try:
            s.connect((addr, port, 0, scope))
            return "open"
        except ConnectionRefusedError:
            return "closed"
        except OSError:
            return None

def ping(target):
    return subprocess.run(["ping", "-6", "-n", "-c1", "-W1", target], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0

def both(label, addr, scope=0, target=None):
    out = []
    state = tcp(addr, scope)
    if state:
        out.append(f"{label} tcp {port} {state}")
    if ping(target or addr):
        out.append(f"{label} ping answered")
    return out

with ThreadPoolExecutor(32) as pool:
    jobs = [pool.submit(both, a, a) for a in globals_]
    jobs += [pool.submit(both, f"{a}%{i}", a, socket.if_nametoindex(i), f"{a}%{i}")
             for a in links for i in ifaces]
    for job in jobs:
        found += job.result()
for iface in ifaces:
    for addr in globals_:
        subprocess.run(["ip", "-6", "route", "replace", addr + "/128", "dev", iface], check=True)
    with ThreadPoolExecutor(32) as pool:
        for lines in pool.map(lambda a: both(f"{a} on-link via {iface}", a), globals_):
            found += lines
    for addr in globals_:
        subprocess.run(["ip", "-6", "route", "del", addr + "/128", "dev", iface], check=True)
    said = subprocess.run(["ping", "-6", "-n", "-c2", "-i0.5", "-W1", f"ff02::1%{iface}"],
                          capture_output=True, text=True).stdout
    for who in sorted(set(re.findall(r"from ([0-9a-f:]+)", said))):
        found.append(f"ff02::1%{iface} answered by {who}")
print(json.dumps(found))
"""


@pytest.fixture
def host_listener6() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on the host on every IPv6 (and IPv4) address: whoever connects is
    counted, whatever the probes on the nodes make of it."""
    sock = socket.socket(socket.AF_INET6)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    came: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = sock.accept()
            except OSError:
                continue
            came.append(str(peer[0]))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1]), came
    stop.set()
    thread.join(timeout=5)
    sock.close()


def _host_addresses6() -> tuple[list[str], list[str]]:
    """This machine's own IPv6 addresses: (global ones, link-local ones), loopback left out."""
    links = json.loads(subprocess.run(["ip", "-j", "-6", "addr", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    addrs = [a["local"] for link in links for a in link.get("addr_info", [])
             if a["local"] != "::1"]
    return ([a for a in addrs if not a.startswith("fe80:")],
            sorted({a for a in addrs if a.startswith("fe80:")}))


def test_no_node_reaches_the_host_or_another_instance_over_ipv6(
        every_lab: dict[str, runtime.Instance], host_listener6: tuple[int, list[str]]) -> None:
    port, came = host_listener6
    host_globals, host_links = _host_addresses6()
    # the listener hears what reaches the host: the host itself, over IPv6 and IPv4
    for addr in ["::1", *host_globals]:
        with socket.create_connection((addr, port), timeout=2):
            pass
    deadline = 50
    while len(came) < 1 + len(host_globals) and deadline:
        deadline -= 1
        threading.Event().wait(0.1)
    assert len(came) == 1 + len(host_globals), came
    came.clear()

    dual = {name: inst for name, inst in every_lab.items() if _addresses6(inst)}
    assert sorted(dual) == ["seal-ipv6", "seal-ipv6-b"]
    own_links: dict[str, set[str]] = {}
    jobs = []
    for name, inst in dual.items():
        own_links[name] = set()
        for node in inst.containers:
            links = json.loads(inst.exec(node, ["ip", "-j", "-6", "addr", "show"]).stdout)
            own_links[name] |= {a["local"] for link in links for a in link["addr_info"]
                                if a["local"].startswith("fe80:")}
        others = set().union(*(_addresses6(o) for o in dual.values() if o is not inst))
        for node in inst.containers:
            ifaces = [i for i, net in _node_networks(inst, node).items()
                      if net in inst.binding(inst.load_lab()).subnets6]
            if ifaces:
                jobs.append((name, inst, node, sorted(set(host_globals) | others), ifaces))
    assert len(jobs) >= 8

    # The probe sees what answers: a neighbour over IPv6, and its link's all-nodes multicast.
    home = dual["seal-ipv6"]
    neighbour = home.binding(core.get_lab("ipv6")).addresses6["router.lan"]
    res = home.exec("laptop", ["python3", "-c", PROBE6, "22", neighbour, "", "lan"])
    seen = json.loads(res.stdout)
    assert f"{neighbour} ping answered" in seen, seen
    assert any(line.startswith("ff02::1%lan answered by fe80:") for line in seen), seen

    def probe(job: tuple[str, runtime.Instance, str, list[str], list[str]]) -> list[str]:
        name, inst, node, targets, ifaces = job
        res = inst.exec(node, ["python3", "-c", PROBE6, str(port), ",".join(targets),
                               ",".join(host_links), ",".join(ifaces)])
        assert res.exit_code == 0, res.stderr
        lines = json.loads(res.stdout)
        stray = [ln for ln in lines if not (" answered by " in ln
                                              and ln.rsplit(" ", 1)[1] in own_links[name])]
        return [f"{name}/{node} -> {line}" for line in stray]

    with ThreadPoolExecutor(4) as pool:
        reached = [line for lines in pool.map(probe, jobs) for line in lines]
    assert reached == []
    assert came == [], f"the host's listener was reached from {came}"


RAW = (Path(__file__).resolve().parent / "rawframes.py").read_text()
LINK_GROUPS = ["01:80:c2:00:00:02", "01:80:c2:00:00:03", "01:80:c2:00:00:0e"]


@pytest.fixture
def host_listeners() -> Iterator[tuple[int, list[str]]]:
    """A TCP and a UDP listener on the host, on every IPv4 and IPv6 address, one port: every
    connection and datagram that reaches the host is counted."""
    tcp = socket.socket(socket.AF_INET6)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    tcp.bind(("::", 0))
    port = int(tcp.getsockname()[1])
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    udp.bind(("::", port))
    tcp.listen(64)
    for s in (tcp, udp):
        s.settimeout(0.2)
    came: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = tcp.accept()
            except OSError:
                continue
            came.append(f"tcp from {peer[0]}")
            conn.close()

    def receive() -> None:
        while not stop.is_set():
            try:
                _, peer = udp.recvfrom(2048)
            except OSError:
                continue
            came.append(f"udp from {peer[0]}")

    threads = [threading.Thread(target=f, daemon=True) for f in (accept, receive)]
    for t in threads:
        t.start()
    yield port, came
    stop.set()
    for t in threads:
        t.join(timeout=5)
    tcp.close()
    udp.close()


def _mac(device: str) -> str:
    with open(f"/sys/class/net/{device}/address") as fh:
        return fh.read().strip()


def _eui64(mac: str) -> str:
    b = [int(x, 16) for x in mac.split(":")]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80, 0, 0, 0, 0, 0, 0, b[0] ^ 2, b[1], b[2],
                                            0xFF, 0xFE, b[3], b[4], b[5]])))


def test_raw_frames_from_a_node_reach_nothing_of_the_host(
        every_lab: dict[str, runtime.Instance], host_listeners: tuple[int, list[str]]) -> None:
    """Whatever frame a node makes (AF_PACKET, past its own IP stack): ARP, ICMP, UDP and TCP
    SYNs to the host's own IPv4 addresses, ICMPv6 echo, neighbour solicitations, UDP and TCP
    over IPv6 to the bridge's and its ports' link-locals (EUI-64 of their MACs), to the host's
    global addresses and to all-nodes; sent to the bridge's MAC, to each port's (the host's
    end of a node's link), to broadcast, all-nodes multicast, and the link-local groups a
    bridge hands to a port's own stack (01:80:c2:00:00:0X). The host answers none, its
    listeners count nothing, and no frame of the host's comes back. The same frames sent to a
    neighbour node are answered: the test sees what answers."""
    port, came = host_listeners
    host4 = sorted(_host_addresses())
    host_globals, _ = _host_addresses6()
    jobs = []
    for inst in every_lab.values():
        lab = inst.load_lab()
        binding = inst.binding(lab)
        for net_name, net in inst.info.networks.items():
            bridge = _bridge(net)
            ports = sorted(os.listdir(f"/sys/class/net/{bridge}/brif"))
            host_macs = [_mac(bridge), *(_mac(p) for p in ports)]
            gateways = [cfg["Gateway"] for cfg in docker_api.client().networks.get(
                net.engine_name).attrs["IPAM"]["Config"]]
            for node in inst.containers:
                iface = next((i for i, n in _node_networks(inst, node).items() if n == net_name),
                             None)
                if iface is None:
                    continue
                spec = {"macs": [*host_macs, "ff:ff:ff:ff:ff:ff", "33:33:00:00:00:01",
                                 *LINK_GROUPS],
                        "ipv4": host4 + gateways,
                        "ipv6": [*host_globals, *(_eui64(m) for m in host_macs), "ff02::1"],
                        "own": host_macs, "source4": binding.address(f"{node}.{iface}"),
                        "wait": 1.0}
                jobs.append((inst, node, iface, spec))
    assert len(jobs) >= 50

    def send(job: tuple[runtime.Instance, str, str, dict[str, Any]]) -> tuple[int, list[str]]:
        inst, node, iface, spec = job
        res = inst.exec(node, ["python3", "-c", RAW, iface, json.dumps(spec), str(port)])
        assert res.exit_code == 0, (inst.name, node, res.stderr)
        got = json.loads(res.stdout)
        return int(got["sent"]), [f"{inst.name}/{node} ({iface}): {s}" for s in got["seen"]]

    # The frames do reach a node: the router answers the friend's, to its own MAC and address.
    home = every_lab["seal-forwarding"]
    router4 = home.binding(core.get_lab("forwarding")).address("router.wan")
    router_mac = home.exec("router", ["cat", "/sys/class/net/wan/address"]).stdout.strip()
    _, seen = send((home, "friend", "wan", {
        "macs": [router_mac], "ipv4": [router4], "ipv6": [], "own": [],
        "source4": home.binding(core.get_lab("forwarding")).address("friend.wan"), "wait": 1.0}))
    assert any("ARP reply" in s for s in seen) and any("ICMP echo reply" in s for s in seen) \
        and any("TCP answer" in s for s in seen), seen

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, jobs))
    assert all(sent > 0 for sent, _ in results)
    assert [line for _, lines in results for line in lines] == []
    threading.Event().wait(0.5)  # what was on its way to the listeners has arrived
    assert came == [], f"the host's listeners were reached: {came}"


def test_a_node_of_an_ipv4_only_lab_cannot_turn_ipv6_on(
        every_lab: dict[str, runtime.Instance]) -> None:
    """Root on a node of an IPv4-only lab has IPv6 off, and no way to turn it on (the kernel
    settings are read-only in a container), so the host's link-local address on its bridge
    is out of reach."""
    tries = ("sysctl -w net.ipv6.conf.all.disable_ipv6=0 && echo turned-on; "
             "ip -6 addr add 2001:db8::99/64 dev lo && echo added; cat /proc/net/if_inet6")
    jobs = [(inst, node) for inst in every_lab.values() if not _addresses6(inst)
            for node in inst.containers]
    assert len(jobs) >= 12

    def attempt(job: tuple[runtime.Instance, str]) -> str:
        inst, node = job
        return f"{inst.name}/{node}: " + inst.exec(node, ["sh", "-c", tries]).stdout.strip()

    with ThreadPoolExecutor(8) as pool:
        said = list(pool.map(attempt, jobs))
    assert [line for line in said if not line.endswith(": ")] == []


def _node_networks(inst: runtime.Instance, node: str) -> dict[str, str]:
    """node's interfaces -> the lab network each is on."""
    lab_node = inst.load_lab().node(node)
    assert lab_node is not None
    return {i.name: i.network for i in lab_node.interfaces}


def test_every_route_of_every_node_stays_inside_its_lab(
        every_lab: dict[str, runtime.Instance]) -> None:
    for inst in every_lab.values():
        lab = inst.load_lab()
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
            _routes6_stay_inside(inst, node)
            # whatever is not the lab's own has no way out (asked of the routing table; no
            # packet is sent): an address outside every lab's pools
            probe = inst.exec(node, ["ip", "route", "get", "100.64.0.123"])
            via = re.search(r" via (\S+)", probe.stdout)
            assert probe.exit_code != 0 or (via and via.group(1) in own) or \
                _is_lab_device(lab, probe.stdout), f"{inst.name}/{node}: {probe.stdout}"


def _routes6_stay_inside(inst: runtime.Instance, node: str) -> None:
    """A dual-stack node's IPv6 routes: to the lab's own /64s, via its own addresses."""
    binding = inst.binding(inst.load_lab())
    own = set(binding.addresses6.values())
    subnets6 = list(binding.subnets6.values())
    listed = inst.exec(node, ["ip", "-j", "-6", "route", "show", "table", "all"])
    if listed.exit_code != 0 and not own:
        return  # IPv6 is off on this node
    for route in json.loads(listed.stdout or "[]"):
        dst = route.get("dst", "")
        if route.get("type") in ("local", "multicast", "anycast") or route.get("dev") == "lo" \
                or dst.startswith(("fe80::", "ff00::")):
            continue
        where = f"{inst.name}/{node}: {route}"
        assert own, f"an IPv6 route on a node without IPv6: {where}"
        if "gateway" in route:
            assert route["gateway"] in own, where
        else:
            net = ipaddress.ip_network(dst, strict=False)
            assert any(net.subnet_of(s) for s in subnets6), where  # type: ignore[arg-type]


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
        for name, net in inst.info.networks.items():
            # The seal takes IPv6 off every lab bridge (IPv4-only labs' too: a node's raw
            # frames could reach it otherwise), and the host never had IPv4 there
            bridge = _bridge(net)
            addr = subprocess.run(["ip", "-br", "addr", "show", "dev", bridge],
                                  capture_output=True, text=True, check=True).stdout.split()
            assert addr[2:] == [], f"the host has an address on {bridge}: {addr}"
            assert not os.path.exists(f"/proc/sys/net/ipv6/conf/{bridge}"), \
                f"the host has IPv6 on {bridge}, the bridge of network '{name}'"
    routes6 = subprocess.run(["ip", "-6", "route", "show", "table", "all"], capture_output=True,
                             text=True, check=True).stdout
    assert "2001:db8" not in routes6, routes6


# --- the host's own firewall, routes and sysctls -----------------------------------------------

DOCKER_CHAINS = re.compile(r"\bDOCKER(-USER|-ISOLATION-STAGE-\d)?\b")
BRIDGE = re.compile(r"\b(br-[0-9a-f]{12}|pl-[0-9a-f]{12})\b")
SYSCTLS = ["net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/all/rp_filter",
           "net/ipv4/conf/all/src_valid_mark", "net/ipv6/conf/all/disable_ipv6",
           "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
           "net/netfilter/nf_conntrack_max", "net/ipv4/ip_unprivileged_port_start",
           "net/ipv6/conf/default/disable_ipv6", "net/ipv6/conf/all/accept_ra",
           "net/bridge/bridge-nf-call-ip6tables"]


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
    for family in ("-4", "-6"):
        routes = subprocess.run(["ip", family, "route", "show", "table", "all"],
                                capture_output=True, text=True).stdout.splitlines()
        state[f"routes {family}"] = [r for r in routes if not BRIDGE.search(r)
                                     and not re.search(r"\bdev veth", r)]
    state["rules"] = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout
    for key in SYSCTLS:
        try:
            with open(f"/proc/sys/{key}") as fh:
                state[key] = fh.read().strip()
        except OSError:
            state[key] = None
    return state


@pytest.mark.parametrize("lab_name", ["forwarding", "ipv6"])
def test_a_full_lab_cycle_leaves_the_hosts_firewall_routes_and_sysctls_alone(
        node_image: str, lab_name: str) -> None:
    before = _host_state()
    assert before["iptables-save"] and not before["iptables-save"][0].startswith("(")
    instance = f"host-untouched-{lab_name}"
    core.up(lab_name, instance=instance)
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
