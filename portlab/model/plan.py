"""A plan: everything needed to start one instance of a lab, whatever the engine.

The plan is a binding (the lab, the instance's subnets and token) and the
node image. From it come, for each node, what the node's entrypoint
(portlab/node/nodeinit.py) reads at start (`node_config`), the names it
resolves (`hosts`) and its welcome text (`motd`). A backend turns a plan
into its engine's own objects (for Docker, a Compose file); nothing here is
Docker's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from portlab.model.context import Binding
from portlab.model.types import Lab, Node
from portlab.model.yamlsrc import Path as KeyPath
from portlab.node import answers


def new_token() -> str:
    return secrets.token_hex(8)


def new_secret() -> str:
    """An instance's secret: each node's answer key comes from it (portlab.node.answers)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Limits:
    """What one node may use (for grading: a submission runs inside its nodes only)."""

    pids: int = 512
    memory_mib: int = 384
    cpus: float = 0.5  # a share of the machine: a spinning submission leaves the rest to others
    file_mib: int = 64  # the largest file any process on the node may write (RLIMIT_FSIZE)


# Every node's own log (what its entrypoint prints; Docker keeps it on the host's disk) is
# capped by portlab itself, whatever the daemon's default: a node that floods its stdout
# (/proc/1/fd/1) fills at most this much of the host's disk.
LOG_MAX_MIB = 1
LOG_FILES = 2


@dataclass(frozen=True)
class Plan:
    binding: Binding
    image: str  # the node image, as the backend names it
    student: str = ""  # whose variant it is, if a student's
    limits: Limits | None = None  # per node, where a submission will run
    # Nodes that get a grader beside them: a container of the grader's own that shares the
    # node's network and processes but not its files, where probes of that node run, so that
    # nothing a submission writes on the node can change what a probe reports.
    graders: tuple[str, ...] = ()

    @property
    def lab(self) -> Lab:
        return self.binding.lab

    @property
    def instance(self) -> str:
        return self.binding.instance

    @property
    def subnets(self) -> dict[str, IPv4Network]:
        return dict(self.binding.subnets)

    @property
    def token(self) -> str:
        return self.binding.token

    @property
    def secret(self) -> str:
        return self.binding.secret

    def address(self, node: Node, network: str) -> str:
        iface = next(i for i in node.interfaces if i.network == network)
        return self.binding.addresses[f"{node.name}.{iface.name}"]


def node_sysctls(node: Node) -> dict[str, str]:
    """The kernel settings of a node's own network namespace, the same on every backend.

    Ports below 1024 need privilege, as on any Linux machine (Docker's default lets every
    user bind them: the ports lab shows the difference); IPv6 is off, unless the node is on an
    IPv6 network (then it is dual stack, and takes no router advertisements: its IPv6
    addresses and routes are the lab's); a router forwards; a VPN node lets WireGuard's marks
    choose its routes."""
    ipv6 = any(i.ipv6 for i in node.interfaces)
    off = "0" if ipv6 else "1"
    sysctls = {"net.ipv6.conf.all.disable_ipv6": off, "net.ipv6.conf.default.disable_ipv6": off,
               "net.ipv4.ip_unprivileged_port_start": "1024"}
    if ipv6:
        sysctls["net.ipv6.conf.all.accept_ra"] = "0"
        sysctls["net.ipv6.conf.default.accept_ra"] = "0"
    if node.forwarding:
        sysctls["net.ipv4.ip_forward"] = "1"
        if ipv6:
            sysctls["net.ipv6.conf.all.forwarding"] = "1"
    if node.vpn:
        sysctls["net.ipv4.conf.all.src_valid_mark"] = "1"
    return sysctls


def node_config(plan: Plan, node: Node) -> dict[str, Any]:
    """What nodeinit.py reads from $PORTLAB_NODE: interfaces, routes, setup, files, services."""
    b = plan.binding
    lab = plan.lab
    addr = b.addresses
    where: KeyPath = ("nodes", node.name)
    routes = []
    for route in node.routes:
        if route.to == "default":
            to = "default"
        elif lab.network(route.to) is not None:
            to = str((b.subnets6 if route.ipv6 else b.subnets)[route.to])
        else:
            to = route.to
        routes.append({"to": to, "via": b.address(route.via, ipv6=route.ipv6),
                       **({"ipv6": True} if route.ipv6 else {})})
    return {
        "node": node.name,
        "lab": lab.name,
        "instance": plan.instance,
        "interfaces": [
            {"name": i.name, "address": addr[f"{node.name}.{i.name}"],
             "prefix": b.subnets[i.network].prefixlen,
             **({"address6": b.addresses6[f"{node.name}.{i.name}"], "prefix6": 64}
                if i.ipv6 else {})}
            for i in node.interfaces
        ],
        "routes": routes,
        "vpn": node.vpn,
        "after": list(node.after),
        "setup": b.render(where + ("setup",), node.setup),
        "files": {path: b.render(where + ("files", path), text)
                  for path, text in node.files.items()},
        "services": [
            {"name": s.name, "run": b.render(where + ("services", j, "run"), s.run),
             "ready_tcp": s.ready_tcp, "ready_udp": s.ready_udp}
            for j, s in enumerate(node.services)
        ],
        "motd": motd(plan, node),
        # this node's own key, for its servers' proofs; no other node can work it out
        "answer_key": answers.node_key(plan.secret, node.name).hex() if plan.secret else "",
    }


def motd(plan: Plan, node: Node) -> str:
    """What a shell on the node greets the learner with."""
    b = plan.binding
    lab = plan.lab
    lines = [f"portlab lab '{lab.name}' (instance {plan.instance}), node {node.name}"]
    if node.role:
        lines.append(f"  {b.role(node.name)}")
    for iface in node.interfaces:
        net = lab.network(iface.network)
        label = net.label if net else iface.network
        ip = b.addresses[f"{node.name}.{iface.name}"]
        lines.append(f"  {iface.name:<6} {ip}/{b.subnets[iface.network].prefixlen}  ({label})")
        if iface.ipv6:
            lines.append(f"  {'':<6} {b.addresses6[f'{node.name}.{iface.name}']}/64")
    lines.append("  `portlab show " + lab.name + "` on your own machine shows the whole brief.")
    return "\n".join(lines) + "\n"


def hosts(plan: Plan, node: Node) -> list[tuple[str, str]]:
    """The names a node resolves (/etc/hosts; never DNS): every node.iface, and plain names
    for the peers it shares a network with. On a dual-stack node, a name of an interface on an
    IPv6 network has its IPv6 address too."""
    lab = plan.lab
    addr = plan.binding.addresses
    addr6 = plan.binding.addresses6 if any(i.ipv6 for i in node.interfaces) else {}
    mine = {i.network for i in node.interfaces}
    entries = []
    for other in lab.nodes:
        if other.name == node.name:
            continue
        shared = [i for i in other.interfaces if i.network in mine]
        if shared:
            ref = f"{other.name}.{shared[0].name}"
            entries.append((other.name, addr[ref]))
            if ref in addr6:
                entries.append((other.name, addr6[ref]))
    for ref, ip in addr.items():
        entries.append((ref, ip))
        if ref in addr6:
            entries.append((ref, addr6[ref]))
    return entries
