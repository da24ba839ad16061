#!/usr/bin/env python3
"""Entrypoint of every portlab node container (runs under docker-init).

It reads the node's configuration from $PORTLAB_NODE (JSON written by
portlab's renderer) and then, in order:

1. renames interfaces by address to the names the lab gives them (wan, lan...),
   because Docker does not keep eth0/eth1 in the order of the compose file, and
   adds the IPv6 addresses of a dual-stack node (Docker gives it none);
2. removes Docker's default route and installs the lab's routes, so the
   Docker host is never a path out of the lab;
3. clears what Docker left in the nat table (its embedded DNS, which labs do
   not use) so a learner's `iptables -t nat -S` starts empty;
4. writes the node's answer key (answers.py) and files, runs its setup script,
   starts its services (each one's process group in /run/portlab/services/NAME.pid)
   and waits until each one listens;
5. prints "portlab-ready" (portlab's `up` waits for this line) and hands over
   to `sleep infinity`, which docker-init stops at once on SIGTERM.

Standard library only: this runs on the image's Debian python3.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time

RUN_DIR = "/run/portlab"
SERVICE_DEADLINE = 150.0  # seconds for every service to listen
TURN_TIMEOUT = 150.0  # seconds a node with `after:` waits for the nodes it starts after
LOG_DIR = "/var/log/portlab"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"portlab-init: {' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc


def rename_interfaces(interfaces: list[dict]) -> None:
    wanted = {i["address"]: i["name"] for i in interfaces}
    links = json.loads(sh("ip", "-j", "-4", "addr", "show").stdout or "[]")
    found = set()
    for link in links:
        for info in link.get("addr_info", []):
            name = wanted.get(info.get("local"))
            if name is None:
                continue
            found.add(info["local"])
            current = link["ifname"]
            if current != name:
                sh("ip", "link", "set", "dev", current, "down")
                sh("ip", "link", "set", "dev", current, "name", name)
            sh("ip", "link", "set", "dev", name, "up")
    missing = set(wanted) - found
    if missing:
        raise SystemExit(f"portlab-init: no interface has address(es) {', '.join(sorted(missing))}")


def link_local(mac: str) -> str:
    """The EUI-64 link-local address of a MAC address (02:42:0a:30:00:14 ->
    fe80::42:aff:fe30:14), as the kernel itself would make it."""
    b = [int(x, 16) for x in mac.split(":")]
    eui = bytes([0xFE, 0x80, 0, 0, 0, 0, 0, 0, b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4],
                 b[5]])
    return str(ipaddress.IPv6Address(eui))


def add_ipv6(interfaces: list[dict]) -> None:
    """The IPv6 addresses of a dual-stack node: Docker knows nothing of a lab's IPv6, so
    the node adds them itself. All without duplicate address detection (nodad): the lab's
    addresses are unique by construction, and a link-local address still being checked
    (tentative, 1-2 s after the link came up) cannot be used to look up a neighbour, so a
    router would hold the first packets it forwards for a second. The kernel's own link-local
    address, made when the rename brought the link up, gives way to the same one, nodad."""
    for iface in interfaces:
        if not iface.get("address6"):
            continue
        name = iface["name"]
        with open(f"/sys/class/net/{name}/address") as fh:
            mac = fh.read().strip()
        sh("ip", "link", "set", "dev", name, "addrgenmode", "none")
        sh("ip", "-6", "addr", "flush", "dev", name, "scope", "link")
        sh("ip", "-6", "addr", "add", f"{link_local(mac)}/64", "dev", name, "nodad")
        sh("ip", "-6", "addr", "add", f"{iface['address6']}/{iface['prefix6']}",
           "dev", name, "nodad")


def set_routes(routes: list[dict]) -> None:
    sh("ip", "route", "flush", "table", "main", "exact", "0.0.0.0/0", check=False)
    for route in routes:
        family = ["-6"] if route.get("ipv6") else []
        sh("ip", *family, "route", "replace", route["to"], "via", route["via"])


def clear_docker_nat() -> None:
    # Docker's embedded DNS rules; labs resolve names from /etc/hosts only.
    sh("nft", "delete", "table", "ip", "nat", check=False)
    try:
        with open("/etc/resolv.conf", "w") as fh:
            fh.write("# portlab: labs have no DNS; node names come from /etc/hosts\n")
    except OSError:
        pass


def write_files(files: dict[str, str]) -> None:
    for path, content in files.items():
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "w") as fh:
            fh.write(content)
        if content.startswith("#!"):
            os.chmod(path, 0o755)


def run_setup(script: str) -> None:
    if not script.strip():
        return
    proc = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True)
    with open(os.path.join(LOG_DIR, "setup.log"), "w") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"portlab-init: setup script failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")


def listening(proto: str, port: int) -> bool:
    files = ["/proc/net/tcp", "/proc/net/tcp6"] if proto == "tcp" else ["/proc/net/udp",
                                                                          "/proc/net/udp6"]
    for path in files:
        try:
            with open(path) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    local_port = int(parts[1].rsplit(":", 1)[1], 16)
                    state = parts[3]
                    if local_port == port and (proto == "udp" or state == "0A"):
                        return True
        except OSError:
            continue
    return False


SERVICES_DIR = os.path.join(RUN_DIR, "services")  # NAME.pid: each service's process group


def start_services(services: list[dict]) -> None:
    procs = []
    os.makedirs(SERVICES_DIR, exist_ok=True)
    for svc in services:
        with open(os.path.join(LOG_DIR, f"{svc['name']}.log"), "ab") as log:
            proc = subprocess.Popen(["sh", "-c", svc["run"]], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        with open(os.path.join(SERVICES_DIR, f"{svc['name']}.pid"), "w") as fh:
            fh.write(f"{proc.pid}\n")
        procs.append((svc, proc))
    # Generous: on a busy machine (dozens of labs starting at once) a server takes a while.
    deadline = time.monotonic() + SERVICE_DEADLINE
    pause = 0.01  # grows to 0.2 s: a busy machine is not made busier by the waiting
    for svc, proc in procs:
        checks = [(proto, int(svc[key])) for proto, key in (("tcp", "ready_tcp"),
                                                             ("udp", "ready_udp")) if svc.get(key)]
        while True:
            if proc.poll() is not None and checks:
                tail = _tail(os.path.join(LOG_DIR, f"{svc['name']}.log"))
                raise SystemExit(f"portlab-init: service {svc['name']} exited "
                                 f"({proc.returncode}): {tail}")
            if all(listening(p, port) for p, port in checks):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"portlab-init: service {svc['name']} did not start listening "
                                 f"within {SERVICE_DEADLINE:.0f}s")
            time.sleep(pause)
            pause = min(0.2, pause * 1.5)


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()[-600:].strip()
    except OSError:
        return ""


def wireguard_mode() -> str:
    probe = sh("ip", "link", "add", "plwgprobe", "type", "wireguard", check=False)
    if probe.returncode == 0:
        sh("ip", "link", "del", "plwgprobe", check=False)
        return "kernel"
    return "userspace"


SYSCTL_SHIM = "/usr/local/sbin/sysctl"
SYSCTL_SHIM_TEXT = """#!/bin/sh
# portlab: /proc/sys is read-only in a container, so writing a sysctl fails even when the
# value is already the one asked for. wg-quick does exactly that for a full tunnel
# (AllowedIPs = 0.0.0.0/0): it sets net.ipv4.conf.all.src_valid_mark=1, which portlab set
# when the node started. Assignments to the value a key already has succeed here without
# writing; everything else goes to the real sysctl.
assigned=0
for arg in "$@"; do
  case "$arg" in
    -q|-w|--quiet|--write) ;;
    -*) exec /usr/sbin/sysctl "$@" ;;
    *=*)
      assigned=1
      now=$(/usr/sbin/sysctl -n "${arg%%=*}" 2>/dev/null)
      [ "$now" = "${arg#*=}" ] || exec /usr/sbin/sysctl "$@" ;;
    *) exec /usr/sbin/sysctl "$@" ;;
  esac
done
[ "$assigned" = 1 ] || exec /usr/sbin/sysctl "$@"
exit 0
"""


def install_sysctl_shim() -> None:
    os.makedirs(os.path.dirname(SYSCTL_SHIM), exist_ok=True)
    with open(SYSCTL_SHIM, "w") as fh:
        fh.write(SYSCTL_SHIM_TEXT)
    os.chmod(SYSCTL_SHIM, 0o755)


GO_FILE = os.path.join(RUN_DIR, "go")


def wait_for_turn(after: list[str]) -> None:
    """A node with `after:` starts its setup only once portlab says the nodes it starts
    after are ready (portlab/runtime/ready.py writes GO_FILE)."""
    if not after:
        return
    print(f"portlab-waiting for {', '.join(after)}", flush=True)
    deadline = time.monotonic() + TURN_TIMEOUT
    while not os.path.exists(GO_FILE):
        if time.monotonic() > deadline:
            sys.exit(f"never told to start: waited {TURN_TIMEOUT:.0f} s for {', '.join(after)} "
                     "(this node starts after them) to be ready")
        time.sleep(0.05)


KEY_FILE = os.path.join(RUN_DIR, "answer.key")  # answers.KEY_FILE: this node's answer key


def write_key(key: str) -> None:
    """This node's own key (answers.py): its servers sign their answers with it. Every user
    of this node may read it (a learner's own server signs too); no other node has it."""
    if not key:
        return
    with open(KEY_FILE, "w") as fh:
        fh.write(key + "\n")
    os.chmod(KEY_FILE, 0o444)


def main() -> None:
    config = json.loads(os.environ["PORTLAB_NODE"])
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(LOG_DIR, exist_ok=True)
    write_key(config.get("answer_key", ""))
    rename_interfaces(config["interfaces"])
    add_ipv6(config["interfaces"])
    set_routes(config["routes"])
    clear_docker_nat()
    write_files(config.get("files", {}))
    extra = ""
    if config.get("vpn"):
        install_sysctl_shim()
        mode = wireguard_mode()
        with open(os.path.join(RUN_DIR, "wireguard"), "w") as fh:
            fh.write(mode + "\n")
        extra = f" wireguard={mode}"
    with open(os.path.join(RUN_DIR, "motd"), "w") as fh:
        fh.write(config.get("motd", ""))
    wait_for_turn(config.get("after") or [])
    run_setup(config.get("setup", ""))
    start_services(config.get("services", []))
    with open(os.path.join(RUN_DIR, "ready"), "w") as fh:
        fh.write(str(time.time()))
    print(f"portlab-ready node={config['node']}{extra}", flush=True)
    os.execvp("sleep", ["sleep", "infinity"])


if __name__ == "__main__":
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr, flush=True)
            print("portlab-failed", flush=True)
            sys.exit(1)
        raise
