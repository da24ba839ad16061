"""The doctor's checks: each turns facts (the engine's, a throwaway node's, the host's) into one
Finding. They are plain functions of what they are given, so tests hand them fake facts and
a fake host tree; `run` gathers the real ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from portlab import backend as backend_names
from portlab.backend.base import Backend, EngineFacts, Figure, Finding, NodeProbe, Status
from portlab.doctor import hostinfo
from portlab.doctor.findings import Report
from portlab.doctor.hostinfo import Cgroups, Disk, HostIptables, TunHost, WireguardHost

GIB = 1024 ** 3
DISK_FAIL = 1 * GIB  # building the node image takes about this much while it runs
DISK_WARN = 2 * GIB
DISK_WARN_BUILT = GIB // 2  # with the image built: room for the nodes' own writes

@dataclass(frozen=True)
class Check:
    """One of the doctor's own checks: what it is for (the help text shows it), the words of
    an error it may explain (the error path of `up` and `grade`), and whether it can be done
    from the host's files alone, fast (`quick`), for that error path."""

    about: str
    related: tuple[str, ...] = ()
    quick: bool = False


REACHABLE = Check("the engine answers, and which version: without it nothing runs")
# The doctor's checks after the engine's own (portlab.backend: ENGINE_CHECKS), in the order it
# reports them.
CHECKS: dict[str, Check] = {
    "node-image": Check("the node image of this portlab is built (else `up` builds it first)"),
    "disk-space": Check("free disk where the engine keeps images: building the node image "
                        "needs ~1 GiB",
                        ("no space left", "disk quota", "not enough space", "enospc"), True),
    "cgroup-limits": Check("the pids and memory cgroup controllers: `portlab grade` holds a "
                           "submission to process and memory limits with them",
                           ("pids", "memory limit", "cgroup", "swap limit"), True),
    "tun-device": Check("/dev/net/tun: VPN nodes get it, and wireguard-go needs it",
                        ("/dev/net/tun", "tun device", "tun: "), True),
    "wireguard-module": Check("kernel WireGuard (fast), or VPN nodes fall back to userspace "
                              "wireguard-go", ("wireguard",), True),
    "iptables-backend": Check("the iptables of the host and of the node image (nf_tables or "
                              "legacy) and that the image's works on this kernel"),
    "bridge-netfilter": Check("bridge-nf-call-iptables: whether frames between a lab's nodes "
                              "pass the host's own iptables"),
    "forward-policy": Check("the host's FORWARD chain: its policy, and the engine's rules in it"),
    "forward-policy6": Check("the host's IPv6 FORWARD chain (ip6tables): whether IPv6 between "
                             "the nodes of an IPv6 lab passes it"),
    "address-pools": Check("the engine's default address pools and networks against the ranges "
                           "portlab takes lab subnets from"),
    "seal": Check("tc's clsact and classic BPF filters, which seal a lab's bridges off the host "
                  "(without them `up` refuses: a node could reach the host's own addresses)"),
    "conntrack": Check("the host's connection-tracking table: whether frames between a lab's "
                       "nodes fill it (a hostile submission can, in seconds), and the room left"),
}


def reachable_id() -> str:
    """The first finding's id: the chosen backend's name, "-reachable" (docker-reachable)."""
    return f"{backend_names.chosen()}-reachable"


def every_check() -> dict[str, str]:
    """Every finding the doctor reports, in order, and what it is for: the engine answers, the
    engine's own checks (from its backend, behind the seam), then the doctor's."""
    return {reachable_id(): REACHABLE.about, **backend_names.engine_checks(),
            **{finding_id: check.about for finding_id, check in CHECKS.items()}}




def _unknown(finding_id: str, why: str) -> Finding:
    return Finding(finding_id, Status.WARN, f"not checked: {why}",
                   f"fix {reachable_id()} first")


def _gib(size: int) -> float:
    return round(size / GIB, 1)


# --- the engine -------------------------------------------------------------------------------


def engine_reachable(f: EngineFacts) -> Finding:
    engine = f.engine or "the engine"
    if not f.reachable:
        return Finding(reachable_id(), Status.FAIL, f.problem,
                       f.hint or f"start {engine} and check that portlab can reach it",
                       {"version": None})
    where = " on another machine" if f.remote else ""
    rootless = ", rootless" if f.rootless else ""
    return Finding(reachable_id(), Status.OK,
                   f"{engine} {f.version} (API {f.api_version}{rootless}){where}, "
                   f"{f.operating_system}, kernel {f.kernel}",
                   figures={"version": f.version, "api_version": f.api_version,
                            "kernel": f.kernel, "rootless": f.rootless, "remote": f.remote})


def node_image(f: EngineFacts) -> Finding:
    if not f.reachable:
        return _unknown("node-image", "the engine does not answer")
    figures: dict[str, Figure] = {"image": f.image, "present": f.image_present,
                                           "others": list(f.image_others)}
    if f.image_present:
        return Finding("node-image", Status.OK, f"{f.image} is built (current)", figures=figures)
    if f.image_present is None:
        return Finding("node-image", Status.WARN, "could not look the node image up",
                       "`portlab image build`", figures)
    how = ("only portlab's tools are added to the base that is there: seconds"
           if f.base_present else "about a minute (offline with mmdebstrap: a few)")
    older = (f"; older ones are present ({', '.join(f.image_others[:3])}), built for another "
             "version of portlab, so it is not current" if f.image_others else "")
    return Finding("node-image", Status.WARN,
                   f"{f.image} is not built{older}; `portlab up` builds it first ({how})",
                   "`portlab image build` (now), or just `portlab up LAB`", figures)


def disk_space(d: Disk, image_present: bool | None, remote: bool = False) -> Finding:
    if remote:
        return Finding("disk-space", Status.WARN,
                       "not checked: Docker runs on another machine (DOCKER_HOST)",
                       "check free disk on the Docker host: `df -h /var/lib/docker`")
    if d.free is None:
        return Finding("disk-space", Status.WARN, f"could not measure free disk ({d.problem})",
                       "check it: `df -h /var/lib/docker`", {"path": d.path, "free_gib": None})
    free = _gib(d.free)
    figures: dict[str, Figure] = {"path": d.path, "free_gib": free}
    fix = (f"free space on the disk of {d.path} (`docker system prune` removes unused "
           "images and build cache; `portlab prune --images` portlab's old images)")
    if not image_present and d.free < DISK_FAIL:
        return Finding("disk-space", Status.FAIL,
                       f"{free} GiB free in {d.path}: building the node image needs about "
                       "1 GiB", fix, figures)
    if not image_present and d.free < DISK_WARN:
        return Finding("disk-space", Status.WARN,
                       f"{free} GiB free in {d.path}: tight for building the node image "
                       "(about 1 GiB while it builds)", fix, figures)
    if image_present and d.free < DISK_WARN_BUILT:
        return Finding("disk-space", Status.WARN,
                       f"{free} GiB free in {d.path}: the image is built, but nodes, logs and "
                       "captures may fill it", fix, figures)
    return Finding("disk-space", Status.OK, f"{free} GiB free in {d.path}", figures=figures)


def cgroup_limits(f: EngineFacts, cg: Cgroups) -> Finding:
    has = {
        "pids": f.pids_limit if f.pids_limit is not None else "pids" in cg.controllers,
        "memory": f.memory_limit if f.memory_limit is not None else "memory" in cg.controllers,
    }
    version = f.cgroup_version or (str(cg.version) if cg.version else "unknown")
    driver = f" ({f.cgroup_driver})" if f.cgroup_driver else ""
    figures: dict[str, Figure] = {
        "version": version, "driver": f.cgroup_driver or None, "pids": has["pids"],
        "memory": has["memory"], "swap": f.swap_limit,
        "controllers": sorted(cg.controllers)}
    missing = [name for name, ok in has.items() if not ok]
    fix_boot = ("enable the controllers at boot: add `cgroup_enable=memory swapaccount=1` to "
                "GRUB_CMDLINE_LINUX in /etc/default/grub, `sudo update-grub`, reboot")
    if missing:
        return Finding("cgroup-limits", Status.WARN,
                       f"no {' and no '.join(missing)} controller in cgroup v{version}{driver}: "
                       "`portlab grade` cannot hold a submission to its "
                       f"{' and '.join('process' if m == 'pids' else m for m in missing)} limit "
                       "(labs themselves run)", fix_boot, figures)
    if f.swap_limit is False:
        return Finding("cgroup-limits", Status.WARN,
                       f"Docker cannot limit swap (cgroup v{version}{driver}): pids and memory "
                       "limits work, but a graded submission can use swap beyond its memory "
                       "limit", fix_boot, figures)
    return Finding("cgroup-limits", Status.OK,
                   f"cgroup v{version}{driver}: pids and memory limits work", figures=figures)


# --- the kernel's devices and modules ---------------------------------------------------------


def tun_device(t: TunHost, probe: NodeProbe | None, *, wireguard_kernel: bool | None,
               vpn_labs: list[str], remote: bool = False) -> Finding:
    labs = ", ".join(vpn_labs) or "VPN labs"
    figures: dict[str, Figure] = {"host": None if remote else t.exists,
                                           "opened_in_node": None if probe is None else probe.tun}
    make = ("sudo modprobe tun; or create it: sudo mkdir -p /dev/net && "
            "sudo mknod /dev/net/tun c 10 200 && sudo chmod 0666 /dev/net/tun")
    if not remote and not t.exists:
        return Finding("tun-device", Status.FAIL,
                       f"/dev/net/tun is missing: the nodes of {labs} cannot start (Docker "
                       "cannot hand them the device)", make, figures)
    if not remote and not t.char_device:
        return Finding("tun-device", Status.FAIL,
                       "/dev/net/tun is not a character device: VPN nodes cannot use it",
                       f"sudo rm /dev/net/tun; {make}", figures)
    if probe is not None and probe.tun is False:
        status = Status.WARN if wireguard_kernel else Status.FAIL
        so = ("kernel WireGuard works, so VPN nodes do not need it" if wireguard_kernel
              else f"without kernel WireGuard, wireguard-go needs it: {labs} cannot work")
        return Finding("tun-device", status,
                       f"/dev/net/tun cannot be used in a node ({probe.tun_error}); {so}",
                       make, figures)
    if probe is not None and probe.tun:
        return Finding("tun-device", Status.OK,
                       f"/dev/net/tun ({t.numbers or 'on the Docker host'}): a throwaway node "
                       "made a TUN interface with it", figures=figures)
    if remote:
        return Finding("tun-device", Status.WARN,
                       "not checked: Docker runs on another machine and no node could be "
                       "started to look", "check `ls -l /dev/net/tun` on the Docker host", figures)
    return Finding("tun-device", Status.OK, f"/dev/net/tun is there ({t.numbers}, mode {t.mode})",
                   figures=figures)


def wireguard_module(w: WireguardHost, probe: NodeProbe | None, remote: bool = False) -> Finding:
    in_node = None if probe is None else probe.wireguard_kernel
    figures: dict[str, Figure] = {
        "mode": "kernel" if in_node or (in_node is None and w.loaded and not remote)
        else "userspace",
        "loaded": None if remote else w.loaded, "loadable": None if remote else w.loadable,
        "config": w.config, "tested_in_node": in_node}
    userspace = ("VPN nodes use userspace wireguard-go (works; slower, and `ip link` shows "
                 "the tunnel as a tun device)")
    if in_node or (in_node is None and w.loaded and not remote):
        how = "a throwaway node made a WireGuard link" if in_node else "the module is loaded"
        return Finding("wireguard-module", Status.OK, f"kernel WireGuard ({how})", figures=figures)
    if remote and in_node is None:
        return Finding("wireguard-module", Status.WARN,
                       "not checked: Docker runs on another machine",
                       "check `lsmod | grep wireguard` on the Docker host", figures)
    if w.loadable and not w.loaded:
        return Finding("wireguard-module", Status.WARN,
                       f"the wireguard module is installed but not loaded: {userspace}",
                       "sudo modprobe wireguard (and, to load it at boot: echo wireguard | "
                       "sudo tee /etc/modules-load.d/wireguard.conf)", figures)
    if w.config == "n":
        said = f"kernel {w.release} was built without WireGuard (CONFIG_WIREGUARD is not set)"
    elif w.loaded:
        said = "the module is loaded, yet a node could not make a WireGuard link"
    else:
        said = f"no wireguard module for kernel {w.release or '(unknown)'}"
    return Finding("wireguard-module", Status.WARN, f"{said}: {userspace}",
                   "nothing is needed for the labs; for kernel WireGuard use a kernel with it "
                   "(Linux 5.6 and later ship it, e.g. Debian's linux-image-amd64)", figures)


# --- the firewall -----------------------------------------------------------------------------


def seal(probe: NodeProbe | None) -> Finding:
    """The seal of a lab's bridges (backend.docker.models.SEAL_SCRIPT) needs tc's clsact qdisc
    and cls_bpf in direct-action mode; the throwaway node tried both on its own loopback."""
    if probe is None or not probe.ran or probe.seal is None:
        why = probe.problem if probe is not None and probe.problem else "no throwaway node ran"
        return Finding("seal", Status.WARN, f"not checked: {why}", "run `portlab doctor` again "
                       "once Docker and the node image are there", {"works": None})
    if probe.seal:
        return Finding("seal", Status.OK, "tc clsact and classic BPF filters work: labs are "
                       "sealed off the host (no frame a node makes reaches the host's own "
                       "stack)", figures={"works": True})
    return Finding("seal", Status.FAIL, "labs cannot be sealed off the host on this kernel, so "
                   f"`portlab up` refuses to start them: {probe.seal_error or 'tc failed'}",
                   "load the modules: sudo modprobe sch_ingress cls_bpf (a kernel without "
                   "them cannot run portlab's labs safely)", {"works": False})


NOTRACK = re.compile(r"^-A PREROUTING -i pl-\+ .*-j (NOTRACK|CT --notrack)$")


def conntrack(ct: hostinfo.Conntrack, bridge_nf: str | None, host: HostIptables | None,
              host6: HostIptables | None, remote: bool = False) -> Finding:
    """Bridged frames between a lab's nodes pass the host's netfilter when
    bridge-nf-call-iptables is 1, and each new flow takes an entry in the host's one
    conntrack table: a node that sends spoofed packets (it is root with NET_RAW) fills it in
    seconds, and then the host and every lab drop new connections. portlab does not touch the
    host's firewall; a raw-table NOTRACK rule for the labs' bridges (pl-+) keeps lab traffic
    out of the table."""
    figures: dict[str, Figure] = {"count": ct.count, "max": ct.max,
                                  "bridge_nf_call_iptables": bridge_nf, "notrack": None}
    if remote:
        return _elsewhere("conntrack", "sysctl net.netfilter.nf_conntrack_count "
                          "net.netfilter.nf_conntrack_max", figures)
    if ct.count is None or ct.max is None:
        return Finding("conntrack", Status.OK, "the host tracks no connections (netfilter's "
                       "conntrack is not loaded): a lab cannot fill a table", figures=figures)
    room = f"{ct.count} of {ct.max} entries used"
    if bridge_nf != "1":
        return Finding("conntrack", Status.OK, f"{room}; frames between a lab's nodes never "
                       "reach the host's netfilter (bridge-nf-call-iptables is not 1)",
                       figures=figures)
    rules = [*(host.raw_prerouting or () if host else ()),
             *(host6.raw_prerouting or () if host6 else ())]
    known = host is not None and host.raw_prerouting is not None
    figures["notrack"] = any(NOTRACK.match(r) for r in rules) if known else None
    if figures["notrack"]:
        return Finding("conntrack", Status.OK, f"{room}; a raw-table NOTRACK rule keeps the "
                       "labs' bridges (pl-+) out of the host's connection tracking",
                       figures=figures)
    unknown = "" if known else " (whether a NOTRACK rule keeps them out is not known: reading " \
        "the host's raw table needs root)"
    return Finding(
        "conntrack", Status.WARN,
        f"{room}: every new flow between a lab's nodes takes an entry in the host's one "
        "connection-tracking table (bridge-nf-call-iptables=1), and a node sending spoofed "
        "packets can fill it in seconds (2000 entries in 0.02 s, measured on a 2-core "
        "machine); then the host and every lab drop new connections until entries expire "
        "(30 s for UDP, 120 s for a TCP SYN)"
        f"{unknown}",
        "keep lab traffic out of it, for the labs' bridges only: sudo iptables -t raw -I "
        "PREROUTING -i pl-+ -j NOTRACK && sudo ip6tables -t raw -I PREROUTING -i pl-+ -j "
        "NOTRACK (keep it across reboots with your firewall's tool, e.g. netfilter-persistent "
        "save); or make the table larger: sudo sysctl -w net.netfilter.nf_conntrack_max=1048576",
        figures)


def iptables_backend(host: HostIptables | None, probe: NodeProbe | None) -> Finding:
    image_version, image_backend = hostinfo.iptables_version(
        probe.iptables_version if probe is not None else "")
    host_backend = host.backend if host is not None else ""
    figures: dict[str, Figure] = {
        "host": host_backend or None, "host_version": (host.version if host else "") or None,
        "image": image_backend or None, "image_version": image_version or None,
        "image_works": None if probe is None else probe.iptables_works}
    host_said = (f"host {host.version} ({host_backend})" if host is not None and host_backend
                 else "host: no iptables" if host is not None and not host.binary
                 else "host: unknown")
    if probe is None or not probe.ran:
        why = probe.problem if probe is not None else "no node was started"
        return Finding("iptables-backend", Status.WARN,
                       f"{host_said}; the image's was not checked ({why})",
                       "`portlab image build`, then `portlab doctor` again", figures)
    module = "nf_tables" if image_backend == "nf_tables" else "ip_tables"
    alternative = "nft" if image_backend == "nf_tables" else "legacy"
    if probe.iptables_works is False:
        return Finding("iptables-backend", Status.FAIL,
                       f"{host_said}; in the node image iptables {image_version} "
                       f"({image_backend}) does not work on this kernel: "
                       f"{probe.iptables_error[-160:]}",
                       f"load the kernel's {module} support: sudo modprobe {module}",
                       figures)
    said = f"{host_said}; node image {image_version} ({image_backend}), works on this kernel"
    if host_backend and image_backend and host_backend != image_backend:
        return Finding("iptables-backend", Status.WARN,
                       f"{said}. They differ: Docker writes its DNS rules into each node with "
                       f"the host's {host_backend} iptables, where portlab cannot clear them and "
                       "`iptables -t nat -S` on a node does not show them (they touch only "
                       "127.0.0.11, which labs do not use)",
                       f"make the host's iptables {image_backend} too: sudo update-alternatives "
                       f"--set iptables /usr/sbin/iptables-{alternative}, then "
                       "`sudo systemctl restart docker`", figures)
    return Finding("iptables-backend", Status.OK, said, figures=figures)


def _elsewhere(finding_id: str, command: str, figures: dict[str, Figure] | None = None
               ) -> Finding:
    """A host check that cannot be made here: Docker runs on another machine."""
    return Finding(finding_id, Status.WARN, "not checked: Docker runs on another machine",
                   f"check `{command}` on the Docker host", figures or {})


def _bridged_past(finding_id: str, value: str | None, key: str, what: str,
                  figures: dict[str, Figure]) -> Finding | None:
    """OK when bridged frames never reach the host's tables (br_netfilter not loaded, or
    bridge-nf-call-ip(6)tables 0); None when they do (value "1")."""
    if value == "1":
        return None
    said = "br_netfilter is not loaded" if value is None else f"{key}={value}"
    return Finding(finding_id, Status.OK, f"{said}: {what}", figures=figures)


def bridge_netfilter(value: str | None, host: HostIptables | None, remote: bool = False
                     ) -> Finding:
    figures: dict[str, Figure] = {"bridge_nf_call_iptables": value}
    if remote:
        return _elsewhere("bridge-netfilter", "sysctl net.bridge.bridge-nf-call-iptables",
                          figures)
    off = _bridged_past("bridge-netfilter", value, "bridge-nf-call-iptables",
                        "frames between a lab's nodes never pass the host's iptables", figures)
    if off is not None:
        return off
    foreign = []
    if host is not None and host.forward is not None:
        foreign = hostinfo.foreign_rules(host.forward.rules, host.user_rules)
    figures["foreign_rules"] = foreign
    if foreign:
        shown = "; ".join(foreign[:3]) + (f" (+{len(foreign) - 3})" if len(foreign) > 3 else "")
        return Finding("bridge-netfilter", Status.WARN,
                       "bridge-nf-call-iptables=1: frames between a lab's nodes on one bridge "
                       "also pass the host's FORWARD chain, and rules there that are not "
                       f"Docker's filter them too ({shown}). In a NAT lab the friend's packets "
                       "to the router, or the forwarded ones to the server, can be dropped by "
                       "the host, and `portlab check` fails although the learner's rules are "
                       "right",
                       "let lab bridges through before those rules: sudo iptables -I DOCKER-USER "
                       "-i br-+ -o br-+ -j ACCEPT (or, if nothing else needs it: sudo sysctl -w "
                       "net.bridge.bridge-nf-call-iptables=0)", figures)
    known = "" if host is not None and host.forward is not None else \
        " (whether other rules there filter them is not known: see forward-policy)"
    return Finding("bridge-netfilter", Status.OK,
                   "bridge-nf-call-iptables=1 (Docker's setting): frames between a lab's nodes "
                   "also pass the host's FORWARD chain, where Docker's rules accept traffic "
                   f"within each bridge{known}", figures=figures)


def forward_policy(host: HostIptables | None, bridge_nf: str | None, remote: bool = False
                   ) -> Finding:
    if remote:
        return _elsewhere("forward-policy", "sudo iptables -S FORWARD")
    if host is None or host.forward is None:
        why = host.problem if host is not None else "not asked"
        return Finding("forward-policy", Status.WARN, f"unknown: {why}",
                       "run `sudo iptables -S FORWARD` to see it, or `sudo portlab doctor`",
                       {"policy": None})
    fw = host.forward
    docker = hostinfo.docker_rules(fw.rules)
    other = (f"; {'legacy' if host.backend == 'nf_tables' else 'nf_tables'} iptables has "
             "tables on this host too" if fw.other_tables else "")
    figures: dict[str, Figure] = {"policy": fw.policy, "docker_rules": docker,
                                           "rules": len(fw.rules)}
    if fw.policy == "ACCEPT":
        return Finding("forward-policy", Status.OK, f"ACCEPT{other}", figures=figures)
    if docker:
        return Finding("forward-policy", Status.OK,
                       f"{fw.policy} (Docker's setting), with Docker's rules, which accept "
                       "traffic within each of its bridges: a lab's traffic passes (portlab "
                       f"routes nothing through the host){other}", figures=figures)
    so = (": with bridge-nf-call-iptables=1 every frame between a lab's nodes is dropped, and "
          "no check can pass" if bridge_nf == "1" else "")
    return Finding("forward-policy", Status.WARN,
                   f"{fw.policy}, and Docker's rules are missing (a firewall reload flushed "
                   f"them, or Docker runs with iptables disabled){so}{other}",
                   "restore Docker's rules: sudo systemctl restart docker (or let lab bridges "
                   "through: sudo iptables -I FORWARD -i br-+ -o br-+ -j ACCEPT)", figures)


LAB_BRIDGES = "pl-+"  # the host's names for the bridges of lab networks (render.bridge_name)
_LETS_LAB_BRIDGES = re.compile(r"^-A FORWARD( -i pl-\+)?( -o pl-\+)? -j ACCEPT$")


def forward_policy6(host: HostIptables | None, bridge_nf6: str | None, remote: bool = False
                    ) -> Finding:
    """IPv6 between the nodes of an IPv6 lab crosses the host's ip6tables FORWARD chain when
    bridge-nf-call-ip6tables is 1; Docker (with IPv6 off) has no rules there for its bridges."""
    labs = ", ".join(ipv6_labs()) or "none"
    figures: dict[str, Figure] = {"bridge_nf_call_ip6tables": bridge_nf6, "ipv6_labs": labs}
    if remote:
        return _elsewhere("forward-policy6", "sudo ip6tables -S FORWARD", figures)
    off = _bridged_past("forward-policy6", bridge_nf6, "bridge-nf-call-ip6tables",
                        "IPv6 between a lab's nodes never passes the host's ip6tables", figures)
    if off is not None:
        return off
    if host is None or host.forward is None:
        why = host.problem if host is not None else "not asked"
        return Finding("forward-policy6", Status.WARN, f"unknown: {why}",
                       "run `sudo ip6tables -S FORWARD` to see it, or `sudo portlab doctor`",
                       {**figures, "policy": None})
    fw = host.forward
    figures.update(policy=fw.policy, rules=len(fw.rules))
    if fw.policy == "ACCEPT" or any(_LETS_LAB_BRIDGES.match(r) for r in fw.rules):
        return Finding("forward-policy6", Status.OK,
                       f"{fw.policy}: IPv6 between the nodes of an IPv6 lab passes the host's "
                       "ip6tables (bridge-nf-call-ip6tables=1)", figures=figures)
    return Finding("forward-policy6", Status.WARN,
                   f"{fw.policy}, with bridge-nf-call-ip6tables=1: the host drops IPv6 between "
                   f"the nodes of an IPv6 lab ({labs}), and their IPv6 checks cannot pass",
                   f"let the labs' IPv6 bridges through: sudo ip6tables -I FORWARD -i "
                   f"{LAB_BRIDGES} -o {LAB_BRIDGES} -j ACCEPT", figures)


# --- addresses --------------------------------------------------------------------------------


def address_pools(f: EngineFacts, preferred: dict[str, IPv4Network]) -> Finding:
    """`preferred`: "lab/network" -> the subnet a lab's brief shows (its first instance's)."""
    from portlab.model import allocate

    if not f.reachable:
        return _unknown("address-pools", "the engine does not answer")
    ranges = allocate.PUBLIC_POOL + allocate.PRIVATE_POOL
    clashes = [(pool, r) for pool in f.address_pools for r in ranges if pool.base.overlaps(r)]
    pools = ", ".join(str(p.base) if p.base.prefixlen == p.size else f"{p.base} in /{p.size}s"
                      for p in f.address_pools[:8]) + (" ..." if len(f.address_pools) > 8 else "")
    taken = [(net, subnet, where) for net in f.networks if not net.portlab
             for subnet in net.subnets for where, pref in preferred.items()
             if subnet.overlaps(pref)]
    figures: dict[str, Figure] = {
        "docker_pools": [f"{p.base} size {p.size}" for p in f.address_pools],
        "pools_from": f.pools_from, "portlab_ranges": [str(r) for r in ranges],
        "overlaps": [f"{p.base} ~ {r}" for p, r in clashes] +
                    [f"{n.name} {s} ~ {w}" for n, s, w in taken]}
    if clashes:
        shown = ", ".join(f"{p.base} overlaps {r}" for p, r in clashes[:3])
        return Finding("address-pools", Status.WARN,
                       f"Docker's default address pools ({f.pools_from}) overlap the ranges "
                       f"portlab takes lab subnets from ({shown}): networks Docker creates "
                       "without a subnet (other Compose projects) take blocks a lab would use, "
                       "and a lab started at the same moment can lose its subnet to them",
                       'give Docker pools of its own in /etc/docker/daemon.json: '
                       '"default-address-pools": [{"base": "172.16.0.0/12", "size": 24}], then '
                       "`sudo systemctl restart docker`", figures)
    if taken:
        shown = ", ".join(f"{n.name} ({s}) takes {w}'s {preferred[w]}" for n, s, w in taken[:3])
        return Finding("address-pools", Status.WARN,
                       f"Docker's pools ({pools}) keep clear of portlab's ranges, but networks "
                       f"of others use subnets the labs' briefs show: {shown}; those labs' "
                       "first instances get other addresses than their briefs say",
                       "remove those networks if unused (`docker network rm NAME`); otherwise "
                       "`portlab show LAB` of the running lab shows its real addresses", figures)
    return Finding("address-pools", Status.OK,
                   f"Docker's pools ({f.pools_from}: {pools}) and its {len(f.networks)} "
                   f"network{'s' if len(f.networks) != 1 else ''} keep clear of portlab's ranges",
                   figures=figures)


# --- all of them ------------------------------------------------------------------------------


def _labs(keep: Callable[[Any], bool]) -> list[str]:
    """The names of the labs `keep` says yes to (none if the labs cannot be read)."""
    try:
        from portlab.model import catalog

        return [lab.name for lab in catalog.scan().labs if keep(lab)]
    except Exception:
        return []


def vpn_labs() -> list[str]:
    return _labs(lambda lab: any(n.vpn for n in lab.nodes))


def ipv6_labs() -> list[str]:
    """The labs with IPv6 networks (the ones the host's ip6tables can get in the way of)."""
    return _labs(lambda lab: any(n.ipv6 for n in lab.networks))


def preferred_subnets() -> dict[str, IPv4Network]:
    try:
        from portlab.model import catalog

        return {f"{lab.name}/{net}": subnet for lab in catalog.scan().labs
                for net, subnet in lab.preferred_subnets().items()}
    except Exception:
        return {}


def run(backend: Backend, *, root: Path | None = None, probe: bool = True,
        runner: hostinfo.Runner = hostinfo.run,
        on_check: Callable[[str], None] | None = None) -> Report:
    """Every check, on this machine (`root` for the host's files). probe=False starts no
    throwaway node."""
    root = root if root is not None else hostinfo.ROOT

    def step(what: str) -> None:
        if on_check is not None:
            on_check(what)

    step("asking the engine")
    f = backend.facts()
    node: NodeProbe | None = None
    if probe and f.reachable:
        step("starting a throwaway node")
        node = backend.probe_node()
    elif not f.reachable:
        node = NodeProbe(ran=False, problem=f"{f.engine or 'the engine'} does not answer")
    step("reading the host")
    wg = hostinfo.wireguard(root)
    ipt = hostinfo.iptables(runner) if not f.remote else None
    ipt6 = hostinfo.iptables(runner, "ip6tables") if not f.remote else None
    bridge = hostinfo.bridge_nf_call_iptables(root)
    bridge6 = hostinfo.bridge_nf_call_iptables(root, ipv6=True)
    dsk = hostinfo.disk([f.root_dir or backend.data_root, str(root)])
    ran = node if node is not None and node.ran else None
    kernel_wg = ran.wireguard_kernel if ran is not None else \
        (wg.loaded if not f.remote else None)
    found = {finding.id: finding for finding in (
        engine_reachable(f),
        *f.findings,
        node_image(f),
        disk_space(dsk, f.image_present, f.remote),
        cgroup_limits(f, hostinfo.cgroups(root)),
        tun_device(hostinfo.tun(root), ran, wireguard_kernel=kernel_wg, vpn_labs=vpn_labs(),
                   remote=f.remote),
        wireguard_module(wg, ran, f.remote),
        iptables_backend(ipt, node),
        bridge_netfilter(bridge, ipt, f.remote),
        forward_policy(ipt, bridge, f.remote),
        forward_policy6(ipt6, bridge6, f.remote),
        address_pools(f, preferred_subnets()),
        seal(node),
        conntrack(hostinfo.conntrack(root), bridge, ipt, ipt6, f.remote),
    )}
    order = [reachable_id(), *backend.ENGINE_CHECKS, *CHECKS]
    findings = tuple(found.get(finding_id) or Finding(
        finding_id, Status.WARN, "not checked: the engine said nothing about it",
        "report this: the backend lists the check but made no finding")
        for finding_id in order)
    return Report(findings)


def related(message: str, *, root: Path | None = None, unreachable: bool = False,
            engine_root: str = "") -> list[Finding]:
    """The quick checks (host files only: no engine, no container) that relate to an error's
    `message`, and are not ok. For the error path of `up` and `grade`: fast, never raises.
    `engine_root`: where the engine keeps images (its backend's data_root)."""
    root = root if root is not None else hostinfo.ROOT
    words = message.lower()
    out: list[Finding] = []
    try:
        if unreachable:
            out.append(Finding(reachable_id(), Status.FAIL, message.splitlines()[0]))
        wg = hostinfo.wireguard(root)
        quick: dict[str, Callable[[], Finding]] = {
            "tun-device": lambda: tun_device(hostinfo.tun(root), None,
                                             wireguard_kernel=wg.loaded, vpn_labs=[]),
            "disk-space": lambda: disk_space(
                hostinfo.disk([p for p in (engine_root, str(root)) if p]), False),
            "cgroup-limits": lambda: cgroup_limits(EngineFacts(reachable=False),
                                                   hostinfo.cgroups(root)),
            "wireguard-module": lambda: wireguard_module(wg, None),
        }
        for finding_id, check in CHECKS.items():
            if check.quick and any(word in words for word in check.related):
                found = quick[finding_id]()
                if found.status is not Status.OK:
                    out.append(found)
    except Exception:
        return out
    return out
