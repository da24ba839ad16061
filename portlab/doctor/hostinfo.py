"""The host's own facts, read without Docker: kernel modules, sysctls, devices, cgroups, disk,
the host's iptables. Every reader takes the root of the tree to read (`/` on a real machine,
a fake tree in tests); the parsers take the text of a real file or command."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/")


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_text()
    except (OSError, UnicodeDecodeError):
        return None


# --- WireGuard --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireguardHost:
    loaded: bool  # in /sys/module or /proc/modules (loaded, or built in)
    loadable: bool  # a module file for this kernel is installed
    config: str | None  # CONFIG_WIREGUARD: "y", "m", "n" (not set), None (no config found)
    release: str = ""


def modules_list(text: str) -> set[str]:
    """The module names in /proc/modules."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def kernel_config(text: str, option: str) -> str:
    """An option's value in a kernel config: "y", "m", "n" (is not set or absent), or text."""
    for line in text.splitlines():
        if line.startswith(f"{option}="):
            return line.split("=", 1)[1].strip()
        if line.strip() == f"# {option} is not set":
            return "n"
    return "n"


def wireguard(root: Path = ROOT) -> WireguardHost:
    release = (_read(root, "proc/sys/kernel/osrelease") or "").strip()
    loaded = (root / "sys/module/wireguard").exists() or \
        "wireguard" in modules_list(_read(root, "proc/modules") or "")
    mods = root / "lib/modules" / release if release else None
    loadable = False
    if mods is not None:
        dep = (_read(root, f"lib/modules/{release}/modules.dep") or "") + \
            (_read(root, f"lib/modules/{release}/modules.builtin") or "")
        loadable = bool(re.search(r"(^|/)wireguard\.ko", dep, re.MULTILINE))
    config: str | None = None
    text = _config_text(root, release)
    if text is not None:
        config = kernel_config(text, "CONFIG_WIREGUARD")
    return WireguardHost(loaded, loadable, config, release)


def _config_text(root: Path, release: str) -> str | None:
    try:
        return gzip.decompress((root / "proc/config.gz").read_bytes()).decode(errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile):
        pass
    return _read(root, f"boot/config-{release}") if release else None


# --- bridge netfilter, the tun device ---------------------------------------------------------


def bridge_nf_call_iptables(root: Path = ROOT, ipv6: bool = False) -> str | None:
    """net.bridge.bridge-nf-call-iptables ("0" or "1"), or with `ipv6` its IPv6 twin
    bridge-nf-call-ip6tables; None when br_netfilter is not loaded (then bridged frames never
    reach iptables)."""
    key = "bridge-nf-call-ip6tables" if ipv6 else "bridge-nf-call-iptables"
    text = _read(root, f"proc/sys/net/bridge/{key}")
    return None if text is None else text.strip()


@dataclass(frozen=True)
class Conntrack:
    """The host's connection-tracking table: its size and how full it is (None: no conntrack
    loaded, or not readable)."""

    count: int | None
    max: int | None


def conntrack(root: Path = ROOT) -> Conntrack:
    def number(rel: str) -> int | None:
        text = _read(root, rel)
        return int(text) if text is not None and text.strip().isdigit() else None

    return Conntrack(number("proc/sys/net/netfilter/nf_conntrack_count"),
                     number("proc/sys/net/netfilter/nf_conntrack_max"))


@dataclass(frozen=True)
class TunHost:
    exists: bool
    char_device: bool = False
    numbers: str = ""  # "10:200"
    mode: str = ""  # "0666"


def tun(root: Path = ROOT) -> TunHost:
    try:
        st = os.stat(root / "dev/net/tun")
    except OSError:
        return TunHost(False)
    if not stat.S_ISCHR(st.st_mode):
        return TunHost(True, False, mode=oct(st.st_mode & 0o777)[2:].zfill(4))
    return TunHost(True, True, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}",
                   oct(st.st_mode & 0o777)[2:].zfill(4))


# --- cgroups ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cgroups:
    version: int | None  # 1 or 2; None if no cgroup filesystem is mounted
    controllers: frozenset[str] = frozenset()


def cgroup_v1_controllers(mounts: str) -> set[str]:
    """Controllers of the cgroup (v1) filesystems in /proc/mounts."""
    found: set[str] = set()
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "cgroup":
            found.update(opt for opt in parts[3].split(",")
                         if opt not in ("rw", "ro", "relatime", "nosuid", "nodev", "noexec")
                         and "=" not in opt)
    return found


def cgroups(root: Path = ROOT) -> Cgroups:
    v2 = _read(root, "sys/fs/cgroup/cgroup.controllers")
    if v2 is not None:
        return Cgroups(2, frozenset(v2.split()))
    v1 = cgroup_v1_controllers(_read(root, "proc/mounts") or "")
    if v1:
        return Cgroups(1, frozenset(v1))
    return Cgroups(None)


# --- disk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disk:
    path: str  # the folder measured
    free: int | None  # bytes free for an unprivileged writer; None: not measurable
    problem: str = ""


def disk(paths: Sequence[str]) -> Disk:
    """Free space of the first of `paths` that can be measured (Docker's root dir first)."""
    problem = ""
    for path in paths:
        if not path:
            continue
        try:
            return Disk(path, shutil.disk_usage(path).free)
        except OSError as exc:
            problem = f"{path}: {exc.strerror or exc}"
    return Disk(paths[0] if paths else "/", None, problem)


# --- the host's iptables ----------------------------------------------------------------------

Runner = Callable[[list[str]], tuple[int, str]]


def run(argv: list[str]) -> tuple[int, str]:
    """Run a host command, its exit code and its output (127: it could not run)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def iptables_version(text: str) -> tuple[str, str]:
    """("1.8.9", "nf_tables") from `iptables --version` ("iptables v1.8.9 (nf_tables)"); a
    version without a backend (before 1.8) is legacy."""
    match = re.search(r"iptables v(\S+)(?:\s+\((\w+)\))?", text)
    if match is None:
        return "", ""
    return match.group(1), match.group(2) or "legacy"


@dataclass(frozen=True)
class Forward:
    """The host's FORWARD chain as `iptables -S FORWARD` shows it."""

    policy: str  # "ACCEPT", "DROP"
    rules: tuple[str, ...] = ()  # its -A lines
    other_tables: bool = False  # iptables warned that the other backend has tables too


DOCKER_CHAINS = ("DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-FORWARD",
                 "DOCKER-INGRESS", "DOCKER-CT", "DOCKER-BRIDGE")
_DOCKER_IFACE = re.compile(r"-[io] (docker0|br-[0-9a-f]{12}|docker_gwbridge)\b")


def forward_chain(text: str) -> Forward | None:
    policy = ""
    rules = []
    for line in text.splitlines():
        if line.startswith("-P FORWARD "):
            policy = line.split()[2]
        elif line.startswith("-A FORWARD"):
            rules.append(line.strip())
    if not policy:
        return None
    return Forward(policy, tuple(rules), "tables present" in text)


def docker_rules(rules: Sequence[str]) -> bool:
    """Docker manages the chain: it jumps to Docker's own chains."""
    return any(re.search(rf"-j {re.escape(chain)}(\s|$)", rule)
               for rule in rules for chain in ("DOCKER-USER", "DOCKER-FORWARD",
                                               "DOCKER-ISOLATION-STAGE-1"))


def foreign_rules(rules: Sequence[str], user_rules: Sequence[str] = ()) -> list[str]:
    """Rules in FORWARD (or DOCKER-USER) that are not Docker's own: they filter a lab's bridged
    traffic too when bridge-nf-call-iptables is 1."""
    out = []
    for rule in rules:
        target = re.search(r"-j (\S+)", rule)
        if target and target.group(1) in DOCKER_CHAINS:
            continue
        if _DOCKER_IFACE.search(rule):
            continue
        out.append(rule)
    out.extend(r for r in user_rules
               if r.startswith("-A ") and r.strip() != "-A DOCKER-USER -j RETURN")
    return out


@dataclass(frozen=True)
class HostIptables:
    binary: str  # where it is; "" if the host has none
    version: str = ""
    backend: str = ""  # "nf_tables" or "legacy"
    forward: Forward | None = None
    user_rules: tuple[str, ...] = ()  # DOCKER-USER's -A lines
    problem: str = ""  # why FORWARD could not be read
    raw_prerouting: tuple[str, ...] | None = None  # the raw table's PREROUTING -A lines


def iptables(runner: Runner = run, command: str = "iptables") -> HostIptables:
    """The host's FORWARD chain (and DOCKER-USER), from `iptables` or, for IPv6, `ip6tables`."""
    binary = shutil.which(command, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if binary is None:
        return HostIptables("", problem=f"there is no {command} on this host")
    rc, said = runner([binary, "--version"])
    version, backend = iptables_version(said) if rc == 0 else ("", "")
    rc, said = runner([binary, "-w", "2", "-S", "FORWARD"])
    if rc != 0:
        reason = said.splitlines()[-1] if said else f"exit code {rc}"
        if "ermission denied" in said or "must be root" in said:
            reason = f"reading the host's firewall needs root ({command}: Permission denied)"
        return HostIptables(binary, version, backend, problem=reason)
    forward = forward_chain(said)
    rc, user = runner([binary, "-w", "2", "-S", "DOCKER-USER"])
    user_rules = tuple(line for line in user.splitlines() if line.startswith("-A ")) \
        if rc == 0 else ()
    rc, raw = runner([binary, "-w", "2", "-t", "raw", "-S", "PREROUTING"])
    raw_rules = tuple(line.strip() for line in raw.splitlines() if line.startswith("-A ")) \
        if rc == 0 else None
    return HostIptables(binary, version, backend, forward, user_rules,
                        "" if forward else f"no FORWARD policy in {said[:80]!r}", raw_rules)
