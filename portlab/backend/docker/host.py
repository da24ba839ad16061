"""What Docker says about itself and its host, for `portlab doctor` (portlab.doctor).

`facts()` asks the daemon (info, version, networks, the node image) and finds
the installed Compose; it never raises, since a daemon that does not answer is
one of the things the doctor reports. `probe_node()` starts one throwaway
container of the node image (no network, NET_ADMIN, the tun device), runs a
small script there, and removes it: what `iptables` is in the image and whether
it works on this kernel, whether a TUN interface can be made (wireguard-go's
need), whether a kernel WireGuard link can (what nodeinit tries first).

Docker's default address pools are reported by `docker info` from Docker 23 on;
older daemons (20.10) say nothing, so they come from daemon.json if it is
readable, else are moby's built-in defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from ipaddress import IPv4Network, ip_network
from pathlib import Path
from typing import Any

from portlab.backend.base import AddressPool, EngineFacts, EngineNetwork, NodeProbe
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import doctor
from portlab.errors import PortlabError
from portlab.names import scope

# moby's ipamutils defaults (local scope): what a daemon without default-address-pools uses
BUILTIN_POOLS = (
    AddressPool(IPv4Network("172.17.0.0/16"), 16),
    AddressPool(IPv4Network("172.18.0.0/16"), 16),
    AddressPool(IPv4Network("172.19.0.0/16"), 16),
    AddressPool(IPv4Network("172.20.0.0/14"), 16),
    AddressPool(IPv4Network("172.24.0.0/14"), 16),
    AddressPool(IPv4Network("172.28.0.0/14"), 16),
    AddressPool(IPv4Network("192.168.0.0/16"), 20),
)
DAEMON_JSON = "etc/docker/daemon.json"  # under the root; rootless: ~/.config/docker/daemon.json
LABEL_DOCTOR = "portlab.doctor"  # on the throwaway node (prune removes it with the scope's)
PROBE_TIMEOUT = 60  # seconds for the throwaway node to say what it found


def remote() -> bool:
    """The daemon is on another machine (DOCKER_HOST over tcp or ssh)."""
    return (os.environ.get("DOCKER_HOST") or "unix://").split("://", 1)[0] in ("tcp", "ssh")


def pools_from_info(info: dict[str, Any]) -> tuple[AddressPool, ...]:
    """`DefaultAddressPools` of `docker info` (Docker 23 and later), parsed; () if absent."""
    return _pools(info.get("DefaultAddressPools") or [], "Base", "Size")


def pools_from_daemon_json(text: str) -> tuple[AddressPool, ...] | None:
    """`default-address-pools` of a daemon.json; None if it sets none (or is not JSON)."""
    try:
        config = json.loads(text)
    except ValueError:
        return None
    raw = config.get("default-address-pools") if isinstance(config, dict) else None
    if not raw:
        return None
    return _pools(raw, "base", "size")


def _pools(raw: object, base_key: str, size_key: str) -> tuple[AddressPool, ...]:
    pools = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            net = ip_network(str(item.get(base_key)), strict=False)
            size = int(item.get(size_key) or 0)
        except (TypeError, ValueError):
            continue
        if isinstance(net, IPv4Network):
            pools.append(AddressPool(net, size))
    return tuple(pools)


def daemon_json_paths(root: Path, rootless: bool) -> list[Path]:
    paths = [root / DAEMON_JSON]
    if rootless:
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        paths.insert(0, Path(config) / "docker" / "daemon.json")
    return paths


def address_pools(info: dict[str, Any], root: Path = Path("/"),
                  rootless: bool = False) -> tuple[tuple[AddressPool, ...], str]:
    """Docker's default address pools, and where they were read."""
    reported = pools_from_info(info)
    if reported:
        return reported, "docker info"
    if not remote():
        for path in daemon_json_paths(root, rootless):
            try:
                text = path.read_text()
            except OSError:
                continue
            found = pools_from_daemon_json(text)
            if found:
                return found, str(path)
    return BUILTIN_POOLS, "Docker's built-in defaults"


def networks_of(listed: list[Any]) -> tuple[EngineNetwork, ...]:
    out = []
    for net in listed:
        attrs = net.attrs if hasattr(net, "attrs") else net
        subnets = []
        for cfg in (attrs.get("IPAM") or {}).get("Config") or []:
            try:
                parsed = ip_network(cfg.get("Subnet") or "", strict=False)
            except ValueError:
                continue
            if isinstance(parsed, IPv4Network):
                subnets.append(parsed)
        labels = attrs.get("Labels") or {}
        out.append(EngineNetwork(str(attrs.get("Name") or ""), tuple(subnets),
                                 docker_api.LABEL_SCOPE in labels))
    return tuple(out)


def facts() -> EngineFacts:
    found, driver = _facts()
    command, version = _compose()
    return replace(found, engine="Docker", findings=(
        doctor.compose(command, version), doctor.storage_driver(driver, found.root_dir)))


def _facts() -> tuple[EngineFacts, str | None]:
    """The facts, and the storage driver (None: Docker did not answer)."""
    try:
        c = docker_api.client()
    except PortlabError as exc:
        return EngineFacts(reachable=False, problem=exc.message, hint=exc.hint or "",
                           remote=remote()), None
    try:
        with docker_api.guard("asking Docker about itself"):
            info = c.info()
            version = c.version()
            listed = c.networks.list()
    except PortlabError as exc:
        return EngineFacts(reachable=False, problem=exc.message, hint=exc.hint or "",
                           remote=remote()), None
    rootless = any("rootless" in str(opt) for opt in info.get("SecurityOptions") or [])
    pools, pools_from = address_pools(info, rootless=rootless)
    return EngineFacts(
        reachable=True, remote=remote(),
        version=str(version.get("Version") or info.get("ServerVersion") or ""),
        api_version=str(version.get("ApiVersion") or ""),
        operating_system=str(info.get("OperatingSystem") or ""),
        kernel=str(info.get("KernelVersion") or ""),
        root_dir=str(info.get("DockerRootDir") or ""),
        rootless=rootless,
        cgroup_driver=str(info.get("CgroupDriver") or ""),
        cgroup_version=str(info.get("CgroupVersion") or ""),
        pids_limit=_flag(info, "PidsLimit"), memory_limit=_flag(info, "MemoryLimit"),
        swap_limit=_flag(info, "SwapLimit"),
        address_pools=pools, pools_from=pools_from, networks=networks_of(listed),
        **_image()), str(info.get("Driver") or "")


def _flag(info: dict[str, Any], key: str) -> bool | None:
    value = info.get(key)
    return value if isinstance(value, bool) else None


def _compose() -> tuple[str, str]:
    """The Compose command and its version; empty where there is none."""
    from portlab.backend.docker import compose

    try:
        found = compose.detect()
    except PortlabError:
        return "", ""
    return found.command, found.version


def _image() -> dict[str, Any]:
    from portlab.backend.docker import image

    try:
        tag = image.node_tag()
        present = image.exists(tag)
        repo = image.node_repo()
        listed = docker_api.call("listing images", docker_api.client().images.list, name=repo)
        others = sorted({t for img in listed
                         for t in img.tags if t.rsplit(":", 1)[0] == repo and t != tag})
        base = image.exists(image.base_tag())
    except PortlabError:
        return {}
    return {"image": tag, "image_present": present, "image_others": tuple(others),
            "base_present": base}


# What runs in the throwaway node. Its one line of JSON is all it prints.
PROBE_SCRIPT = r"""
import fcntl, json, os, struct, subprocess
def run(*argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return [p.returncode, (p.stdout + p.stderr).strip()[-300:]]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [127, str(exc)]
out = {"iptables_version": run("iptables", "--version"), "iptables_list": run("iptables", "-S"),
       "wireguard": run("ip", "link", "add", "plwgprobe", "type", "wireguard"), "tun": None,
       # what the seal of a lab's bridges needs (models.SEAL_SCRIPT): tc's clsact and a
       # classic BPF filter in direct-action mode, tried on this node's own loopback
       "seal": run("sh", "-c", "tc qdisc add dev lo clsact && tc filter add dev lo ingress "
                   "pref 1 protocol all bpf da bytecode '1,6 0 0 0' && tc filter add dev lo "
                   "egress pref 1 protocol all bpf da bytecode '1,6 0 0 0'")}
if os.path.exists("/dev/net/tun"):
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", b"pltunprobe", 0x0001 | 0x1000))
        finally:
            os.close(fd)
        out["tun"] = [0, ""]
    except OSError as exc:
        out["tun"] = [1, str(exc)]
print(json.dumps(out))
"""


def probe_node() -> NodeProbe:
    from portlab.backend.docker import image

    try:
        tag = image.node_tag()
        use = tag if image.exists(tag) else image.base_tag()
        if use != tag and not image.exists(use):
            return NodeProbe(ran=False, problem="the node image is not built yet")
        try:
            said, tun_error = _run_probe(use, tun=True), ""
        except _NoTun as exc:
            said, tun_error = _run_probe(use, tun=False), exc.why
    except PortlabError as exc:
        return NodeProbe(ran=False, problem=exc.message)
    return parse_probe(said, use, tun_error)


class _NoTun(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _run_probe(tag: str, *, tun: bool) -> str:
    c = docker_api.client()
    api = c.api
    host = api.create_host_config(cap_add=["NET_ADMIN"], network_mode="none",
                                  devices=["/dev/net/tun:/dev/net/tun"] if tun else None)
    created: dict[str, Any] | None = None
    try:
        with docker_api.guard("starting a throwaway node to look at the kernel"):
            try:
                created = api.create_container(
                    tag, entrypoint=["python3", "-c", PROBE_SCRIPT],
                    labels={docker_api.LABEL_SCOPE: scope(), LABEL_DOCTOR: "probe"},
                    host_config=host)
                api.start(created["Id"])
            except Exception as exc:
                if tun and "/dev/net/tun" in str(exc):
                    raise _NoTun(str(getattr(exc, "explanation", None) or exc)) from None
                raise
            api.wait(created["Id"], timeout=PROBE_TIMEOUT)
            logs: bytes = api.logs(created["Id"], stdout=True, stderr=False)
            return logs.decode(errors="replace")
    finally:
        if created is not None:
            try:
                api.remove_container(created["Id"], force=True)
            except Exception:
                pass


def parse_probe(said: str, image_tag: str, tun_error: str = "") -> NodeProbe:
    """The throwaway node's JSON line as a NodeProbe."""
    line = said.strip().splitlines()[-1] if said.strip() else ""
    try:
        out = json.loads(line)
    except ValueError:
        return NodeProbe(ran=False, image=image_tag,
                         problem=f"the throwaway node said no JSON: {said.strip()[-200:]!r}")

    def pair(key: str) -> tuple[int, str] | None:
        value = out.get(key)
        if isinstance(value, list) and len(value) == 2:
            return int(value[0]), str(value[1])
        return None

    version = pair("iptables_version")
    listing = pair("iptables_list")
    wg = pair("wireguard")
    tun = pair("tun")
    seal = pair("seal")
    return NodeProbe(
        ran=True, image=image_tag,
        iptables_version=version[1].splitlines()[0] if version and version[0] == 0 else "",
        iptables_works=None if listing is None else listing[0] == 0,
        iptables_error="" if listing is None or listing[0] == 0 else listing[1],
        tun=False if tun_error else (None if tun is None else tun[0] == 0),
        tun_error=tun_error or ("" if tun is None or tun[0] == 0 else tun[1]),
        wireguard_kernel=None if wg is None else wg[0] == 0,
        seal=None if seal is None else seal[0] == 0,
        seal_error="" if seal is None or seal[0] == 0 else seal[1])
