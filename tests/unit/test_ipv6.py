"""IPv6 on lab networks, without Docker: the /64s, the addresses templates and nodes see, the
routes, the node settings, the seal of the bridges in the Compose file, and probes and servers
that speak IPv6 (on this machine's loopback)."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from portlab.backend.docker import models
from portlab.model import allocate
from portlab.model.context import Binding
from portlab.model.plan import Plan, hosts, node_config, node_sysctls
from portlab.model.types import Lab, Probe
from portlab.probes.base import ProbeRun
from portlab.probes.common import endpoint, host_of
from portlab.probes.runner import resolve
from portlab.trace.events import packet
from portlab.trace.live import DEFAULT_FILTER6, Trace
from tests.unit.labfiles import parse_data

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"

MINI6: dict[str, Any] = {
    "name": "mini6",
    "title": "Two IPv6 networks and a router",
    "summary": "A client on the internet reaches a LAN server over IPv6.",
    "networks": {
        "internet": {"kind": "public", "prefer": "198.18.210.0/24", "ipv6": True,
                     "prefer6": "2001:db8:fe::/64"},
        "lan": {"kind": "private", "prefer": "10.210.0.0/24", "ipv6": True},
        "old": {"kind": "private", "prefer": "10.211.0.0/24"},
    },
    "nodes": {
        "router": {"forwarding": True, "interfaces": {
            "wan": {"network": "internet", "host": 1}, "lan": {"network": "lan", "host": 1}}},
        "server": {"interfaces": {"lan": {"network": "lan", "host": 20},
                                  "old": {"network": "old", "host": 20}},
                   "routes": [{"to": "default", "via": "router.lan", "ipv6": True},
                              {"to": "default", "via": "router.lan"}],
                   "services": [{"name": "web", "run": "portlab-serve http --port 80 "
                                 "--bind {{ addr6['server.lan'] }}", "ready": {"tcp": 80}}]},
        "client": {"interfaces": {"wan": {"network": "internet", "host": 100}},
                   "routes": [{"to": "lan", "via": "router.wan", "ipv6": True}]},
        "legacy": {"interfaces": {"old": {"network": "old", "host": 30}}},
    },
    "checks": [{"id": "web6", "title": "{{ subnet6['lan'] }} is reached at {{ ip6('lan', 20) }}",
                "probes": [{"kind": "http", "from": "client", "to": "server.lan", "port": 80,
                            "ipv6": True, "expect": {"token": True,
                                                     "seen_source": "client.wan"}}]}],
    "solution": {"router": "true"},
}


@pytest.fixture(scope="module")
def lab() -> Lab:
    return parse_data(MINI6, "labs/mini6/lab.yaml")


@pytest.fixture(scope="module")
def first(lab: Lab) -> Binding:
    return Binding(lab, "mini6", lab.preferred_subnets(), "tok123")


def test_a_first_instance_gets_the_preferred_64_and_the_others_one_from_their_ipv4(
        lab: Lab, first: Binding) -> None:
    assert first.subnets6 == {"internet": IPv6Network("2001:db8:fe::/64"),
                              "lan": IPv6Network("2001:db8:ad2::/64")}  # 10.210.0.0 = 0a.d2.00.00
    other = {"internet": IPv4Network("198.18.77.0/24"), "lan": IPv4Network("10.99.3.0/24"),
             "old": IPv4Network("10.99.4.0/24")}
    assert lab.subnets6(other) == {"internet": IPv6Network("2001:db8:c612:4d00::/64"),
                                   "lan": IPv6Network("2001:db8:a63:300::/64")}


def test_derived_64s_are_as_unique_as_the_ipv4_subnets_and_never_a_preferred_one() -> None:
    v4 = [net for pool in (allocate.PUBLIC_POOL, allocate.PRIVATE_POOL)
          for net in list(pool[0].subnets(new_prefix=max(pool[0].prefixlen, 24)))[:300]]
    v6 = [allocate.subnet6(n) for n in v4]
    assert len(set(v6)) == len(v4)
    assert all(n.subnet_of(allocate.IPV6_PREFIX) and n.prefixlen == 64 for n in v6)
    assert not any(n.subnet_of(allocate.PREFER6_BLOCK) for n in v6)


def test_templates_and_nodes_see_the_ipv6_addresses(lab: Lab, first: Binding) -> None:
    assert first.addresses6 == {"router.wan": "2001:db8:fe::1", "router.lan": "2001:db8:ad2::1",
                                "server.lan": "2001:db8:ad2::14", "client.wan": "2001:db8:fe::64"}
    assert "server.old" not in first.addresses6 and "legacy.old" not in first.addresses6
    assert first.render(("x",), "{{ subnet6['lan'] }} {{ ip6('lan', 20) }} "
                        "{{ addr6['client.wan'] }}") == (
        "2001:db8:ad2::/64 2001:db8:ad2::14 2001:db8:fe::64")
    plan = Plan(first, "portlab/node:x")
    server = node_config(plan, lab.node("server"))  # type: ignore[arg-type]
    assert server["interfaces"] == [
        {"name": "lan", "address": "10.210.0.20", "prefix": 24, "address6": "2001:db8:ad2::14",
         "prefix6": 64},
        {"name": "old", "address": "10.211.0.20", "prefix": 24}]
    assert server["routes"] == [{"to": "default", "via": "2001:db8:ad2::1", "ipv6": True},
                                {"to": "default", "via": "10.210.0.1"}]
    assert "--bind 2001:db8:ad2::14" in server["services"][0]["run"]
    client = node_config(plan, lab.node("client"))  # type: ignore[arg-type]
    assert client["routes"] == [{"to": "2001:db8:ad2::/64", "via": "2001:db8:fe::1",
                                 "ipv6": True}]
    assert "2001:db8:ad2::14/64" in server["motd"]


def test_only_nodes_on_an_ipv6_network_have_ipv6_on(lab: Lab) -> None:
    router = node_sysctls(lab.node("router"))  # type: ignore[arg-type]
    assert router["net.ipv6.conf.all.disable_ipv6"] == "0"
    assert router["net.ipv6.conf.all.forwarding"] == "1"
    assert router["net.ipv6.conf.all.accept_ra"] == "0"
    client = node_sysctls(lab.node("client"))  # type: ignore[arg-type]
    assert client["net.ipv6.conf.default.disable_ipv6"] == "0"
    assert "net.ipv6.conf.all.forwarding" not in client
    legacy = node_sysctls(lab.node("legacy"))  # type: ignore[arg-type]
    assert legacy["net.ipv6.conf.all.disable_ipv6"] == "1"
    assert not any("accept_ra" in k or "ipv6.conf.all.forwarding" in k for k in legacy)


def test_names_resolve_to_both_addresses_on_dual_stack_nodes_only(lab: Lab,
                                                                  first: Binding) -> None:
    plan = Plan(first, "portlab/node:x")
    client = hosts(plan, lab.node("client"))  # type: ignore[arg-type]
    assert ("router", "198.18.210.1") in client and ("router", "2001:db8:fe::1") in client
    assert ("server.lan", "2001:db8:ad2::14") in client
    legacy = hosts(plan, lab.node("legacy"))  # type: ignore[arg-type]
    assert not [ip for _, ip in legacy if ":" in ip]


def test_the_compose_file_seals_every_bridge_once_the_nodes_run(first: Binding) -> None:
    plan = Plan(first, "portlab/node:x")
    rendered = yaml.safe_load(models.compose(plan))
    seal = rendered["services"][models.SEAL_NAME]
    bridges = {name: net["driver_opts"].get("com.docker.network.bridge.name")
               for name, net in rendered["networks"].items()}
    named = [bridges["internet"], bridges["lan"], bridges["old"]]
    assert all(b.startswith("pl-") and len(b) <= 15 for b in named) and len(set(named)) == 3
    assert seal["network_mode"] == "host" and seal["restart"] == "no"
    assert seal["cap_drop"] == ["ALL"] and seal["cap_add"] == ["NET_ADMIN"]
    # "$$" in a Compose file is a "$" once Compose has read it; each bridge with its ports
    ports = {"internet": 2, "lan": 2, "old": 2}
    assert seal["entrypoint"] == ["sh", "-c", models.SEAL_SCRIPT.replace("$", "$$"), "seal",
                                  *(f"{bridges[n]}:{ports[n]}" for n in
                                    ("internet", "lan", "old"))]
    assert seal["labels"]["portlab.seal"] == "host"
    assert seal["depends_on"] == {name: {"condition": "service_started"}
                                  for name in ("router", "server", "client", "legacy")}
    for name in ("router", "server", "client", "legacy"):
        assert "depends_on" not in rendered["services"][name]


def test_the_seal_script_fails_unless_the_bridge_has_lost_ipv6(tmp_path: Path) -> None:
    # `ip` and `tc` stand in for iproute2 here; the script's own checks are what is tried.
    for tool in ("ip", "tc"):
        fake = tmp_path / tool
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.run(["sh", "-c", models.SEAL_SCRIPT, "seal", "lo:0"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "the host still has IPv6 on lo" in proc.stderr
    none = subprocess.run(["sh", "-c", models.SEAL_SCRIPT, "seal", "pl-nosuchbridge:1"],
                          env=env, capture_output=True, text=True)
    assert none.returncode == 1 and "pl-nosuchbridge has 0 of its 1 ports" in none.stderr


def test_every_lab_has_a_seal_and_names_its_bridges(lab: Lab) -> None:
    only4 = parse_data({**MINI6, "networks": {k: {kk: vv for kk, vv in v.items()
                                                  if kk not in ("ipv6", "prefer6")}
                                              for k, v in MINI6["networks"].items()},
                        "nodes": {"legacy": MINI6["nodes"]["legacy"]},
                        "checks": [{"id": "x", "title": "x", "probes": [
                            {"kind": "listening", "from": "legacy", "port": 80,
                             "expect": {"listening": False}}]}],
                        "solution": {"legacy": "true"}}, "labs/mini6/lab.yaml")
    plan = Plan(Binding(only4, "x", only4.preferred_subnets(), "t"), "portlab/node:x")
    seal = models.seal_model(plan)
    assert seal is not None and seal["after"] == ["legacy"]
    assert models.SEAL_NAME in models.compose(plan)


class NoNodes:
    def exec(self, *args: Any, **kw: Any) -> Any:
        raise AssertionError("not run")


def test_a_probe_with_ipv6_aims_at_the_ipv6_address_and_says_so(lab: Lab,
                                                                first: Binding) -> None:
    probe: Probe = lab.checks[0].probes[0]
    run = resolve(probe, first, NoNodes())  # type: ignore[arg-type]
    assert run.target == "2001:db8:ad2::14"
    assert run.source_address == "2001:db8:fe::64"
    assert run.address_of("client.wan") == "2001:db8:fe::64"
    assert endpoint(run) == "server.lan = [2001:db8:ad2::14]:80"
    four = ProbeRun(Probe("tcp", "client", "server.lan", 80, {}, {}, "", ()), "client",
                    "198.18.210.100", "10.210.0.20", "server.lan", first.context,
                    NoNodes())  # type: ignore[arg-type]
    assert endpoint(four) == "server.lan = 10.210.0.20:80"
    assert four.address_of("client.wan") == "198.18.210.100"


@pytest.mark.parametrize(("text", "host"), [("10.0.0.2:5000", "10.0.0.2"),
                                            ("[2001:db8:1::a]:5000", "2001:db8:1::a"),
                                            ("10.0.0.2", "10.0.0.2")])
def test_host_of_an_endpoint(text: str, host: str) -> None:
    assert host_of(text) == host


def test_tcpdump_ipv6_lines_are_packets() -> None:
    syn = packet("1796182120.1 wan In  IP6 2001:db8:fe::64.54668 > 2001:db8:ad2::14.80: "
                 "Flags [S], seq 1, win 64800, length 0", "router")
    assert syn is not None and syn.proto == "tcp" and syn.flags == "S"
    assert str(syn.flow) == "[2001:db8:fe::64]:54668 → [2001:db8:ad2::14]:80"
    ping = packet("1796182120.2 lan Out IP6 2001:db8:fe::64 > 2001:db8:ad2::14: ICMP6, echo "
                  "request, id 5, seq 1, length 64", "router")
    assert ping is not None and ping.what == "ping (ICMP echo request)"
    closed = packet("1796182120.3 wan Out IP6 2001:db8:fe::1 > 2001:db8:fe::64: ICMP6, "
                    "destination unreachable, unreachable port, 2001:db8:ad2::14 tcp port 81, "
                    "length 88", "router")
    assert closed is not None and closed.what == "TCP port 81 is closed (ICMP port unreachable)"
    ns = packet("1796182120.4 lan Out IP6 fe80::1 > ff02::1:ff00:14: ICMP6, neighbor "
                "solicitation, who has 2001:db8:ad2::14, length 32", "router")
    assert ns is not None and ns.flow.dst == "ff02::1:ff00:14"


# --- the node's own server and probe, over IPv6 on this machine's loopback ---------------------


def _serve(bind: str, kind: str = "http") -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(NODE / "serve.py"), kind, "--bind", bind,
                             "--port", str(port), "--token", "tok6"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["event"] == "listening"
    return proc, port


def _probe(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(NODE / "probe.py"), *args], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    return dict(json.loads(out))


@pytest.mark.parametrize("kind", ["http", "udp", "tcp"])
def test_a_server_on_both_families_names_each_client_as_it_came(kind: str) -> None:
    proc, port = _serve("::", kind)
    try:
        args = ["--banner"] if kind == "tcp" else []
        over6 = _probe(kind, "::1", str(port), *args)
        over4 = _probe(kind, "127.0.0.1", str(port), *args)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    clients = [g["answer"]["client"] for g in (over6, over4)]
    assert clients[0].startswith("[::1]:") and host_of(clients[0]) == "::1"
    assert clients[1].startswith("127.0.0.1:")  # not ::ffff:127.0.0.1
    assert over6["target"] == f"[::1]:{port}"
    assert over6["local"].startswith("[::1]:")


def test_an_ipv6_probe_of_a_closed_port_is_closed() -> None:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    assert _probe("tcp", "::1", str(port))["state"] == "closed"


def test_neighbour_discovery_is_told_in_words_and_left_out_of_a_default_trace(lab: Lab) -> None:
    ns = packet("1796182120.4 lan Out IP6 2001:db8:ad2::1 > ff02::1:ff00:14: ICMP6, neighbor "
                "solicitation, who has 2001:db8:ad2::14, length 32", "router")
    assert ns is not None
    assert ns.what == "who has 2001:db8:ad2::14? (ICMPv6 neighbour solicitation)"
    na = packet("1796182120.5 lan In IP6 2001:db8:ad2::14 > 2001:db8:ad2::1: ICMP6, neighbor "
                "advertisement, tgt is 2001:db8:ad2::14, length 32", "router")
    assert na is not None and na.what == "2001:db8:ad2::14 is here (ICMPv6 neighbour advertisement)"
    six = Trace(NoNodes(), lab, ["router"])  # type: ignore[arg-type]
    assert six.expr == DEFAULT_FILTER6 and "ip6" in six.expr and "icmp6" in six.expr
    four = Trace(NoNodes(), parse_data({**MINI6, "networks": {
        "internet": {"kind": "public", "prefer": "198.18.210.0/24"},
        "lan": {"kind": "private", "prefer": "10.210.0.0/24"},
        "old": {"kind": "private", "prefer": "10.211.0.0/24"}},
        "nodes": {**MINI6["nodes"], "server": {**MINI6["nodes"]["server"], "routes": [],
                                               "services": []},
                  "client": {**MINI6["nodes"]["client"], "routes": []}},
        "checks": [{"id": "x", "title": "x", "probes": [
            {"kind": "tcp", "from": "client", "to": "server.lan", "port": 80,
             "expect": {"state": "open"}}]}]}, "labs/mini6/lab.yaml"),
                 ["router"])  # type: ignore[arg-type]
    assert four.expr == "ip"


def test_nmap_scans_an_ipv6_address_with_its_ipv6_option() -> None:
    from portlab.probes.scan import argv_for

    six = argv_for([22, 80], "tcp", 5, "2001:db8:1::14")
    assert six[-2:] == ["-6", "2001:db8:1::14"]
    assert "-6" not in argv_for([22, 80], "udp", 5, "10.48.0.20")


def test_a_capture_reads_ipv6_frames_as_it_reads_ipv4_ones() -> None:
    sys.path.insert(0, str(NODE))
    try:
        import pcap as probe_tool  # the node's own portlab-probe's pcap reader
    finally:
        sys.path.pop(0)
    src, dst = "2001:db8:fe::64", "2001:db8:ad2::14"
    tcp = struct.pack(">HHIIBBHHH", 23456, 80, 1, 0, 5 << 4, 0x12, 1000, 0, 0) + b"hi"
    header = struct.pack(">IHBB", 6 << 28, len(tcp), 6, 64) + socket.inet_pton(
        socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    sll2 = b"\x86\xdd" + b"\x00" * 18
    got = probe_tool.parse_frame(sll2 + header + tcp, probe_tool.LINKTYPE_LINUX_SLL2)
    assert got == {"src": src, "dst": dst, "proto": "tcp", "length": 40 + len(tcp),
                   "sport": 23456, "dport": 80, "flags": "SA", "payload": 2}
    icmp = struct.pack(">BBH", 128, 0, 0)  # ICMPv6 echo request
    ping = struct.pack(">IHBB", 6 << 28, len(icmp), 58, 64) + header[8:] + icmp
    raw = probe_tool.parse_frame(ping, probe_tool.LINKTYPE_RAW)  # a tun device: no link header
    assert raw is not None and raw["proto"] == "icmp6" and raw["icmp_type"] == 128
