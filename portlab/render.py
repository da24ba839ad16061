"""Turn a lab plus an allocation into a compose file (compose-templates/compose.yaml.j2).

The rendered file is plain Compose format 2.4, which both `docker-compose`
v1 and `docker compose` v2 accept; the project name is passed with `-p`
(v1 rejects a top-level `name:`). It is complete on its own: `portlab render`
prints it, and the tests start it with plain Compose through pytest-docker.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import jinja2

from portlab import __version__
from portlab import docker_api as d
from portlab.lab import Lab, Node, address, addresses, render_text, template_context
from portlab.names import check_instance_name, project_name  # noqa: F401 (re-exported)


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "compose-templates"
    return packaged if packaged.is_dir() else here.parent / "compose-templates"


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Plan:
    """Everything needed to start one instance of a lab."""

    lab: Lab
    instance: str
    subnets: dict[str, IPv4Network]
    token: str
    image: str

    @property
    def project(self) -> str:
        return project_name(self.instance)

    def context(self) -> dict[str, Any]:
        return template_context(self.lab, self.subnets, self.instance, self.token)


def yaml_quote(value: Any) -> str:
    """A YAML double-quoted scalar that Compose v1 and v2 read back unchanged.

    JSON strings are valid YAML; non-ASCII is escaped so that line separators
    never reach the YAML reader raw, and `$` is doubled because Compose
    interpolates variables in every value.
    """
    text = json.dumps(str(value), ensure_ascii=False)
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x80:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out).replace("$", "$$")


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(templates_dir())),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["q"] = yaml_quote


def node_config(plan: Plan, node: Node) -> dict[str, Any]:
    """The JSON that nodeinit.py reads from $PORTLAB_NODE."""
    ctx = plan.context()
    lab = plan.lab
    addr = ctx["addr"]
    where: tuple[str | int, ...] = ("nodes", node.name)
    routes = []
    for route in node.routes:
        if route.to == "default":
            to = "default"
        elif lab.network(route.to) is not None:
            to = str(plan.subnets[route.to])
        else:
            to = route.to
        routes.append({"to": to, "via": addr[route.via]})
    return {
        "node": node.name,
        "lab": lab.name,
        "instance": plan.instance,
        "interfaces": [
            {"name": i.name, "address": addr[f"{node.name}.{i.name}"],
             "prefix": plan.subnets[i.network].prefixlen}
            for i in node.interfaces
        ],
        "routes": routes,
        "vpn": node.vpn,
        "setup": render_text(lab, where + ("setup",), node.setup, ctx),
        "files": {path: render_text(lab, where + ("files", path), text, ctx)
                  for path, text in node.files.items()},
        "services": [
            {"name": s.name, "run": render_text(lab, where + ("services", j, "run"), s.run, ctx),
             "ready_tcp": s.ready_tcp, "ready_udp": s.ready_udp}
            for j, s in enumerate(node.services)
        ],
        "motd": motd(plan, node),
    }


def motd(plan: Plan, node: Node) -> str:
    lab = plan.lab
    lines = [f"portlab lab '{lab.name}' (instance {plan.instance}), node {node.name}"]
    if node.role:
        lines.append(f"  {node.role}")
    for iface in node.interfaces:
        net = lab.network(iface.network)
        label = net.label if net else iface.network
        ip = address(plan.subnets[iface.network], iface.host)
        lines.append(f"  {iface.name:<6} {ip}/{plan.subnets[iface.network].prefixlen}  ({label})")
    lines.append("  `portlab show " + lab.name + "` on your own machine shows the whole brief.")
    return "\n".join(lines) + "\n"


def extra_hosts(plan: Plan, node: Node) -> list[str]:
    """/etc/hosts names: every node.iface, and plain names for peers on a shared network."""
    lab = plan.lab
    addr = addresses(lab, plan.subnets)
    mine = {i.network for i in node.interfaces}
    entries = []
    for other in lab.nodes:
        if other.name == node.name:
            continue
        shared = [i for i in other.interfaces if i.network in mine]
        if shared:
            entries.append(f"{other.name}:{addr[f'{other.name}.{shared[0].name}']}")
    for key, ip in addr.items():
        entries.append(f"{key}:{ip}")
    return entries


def service_model(plan: Plan, node: Node) -> dict[str, Any]:
    lab = plan.lab
    config = node_config(plan, node)
    sysctls = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
    if node.forwarding:
        sysctls["net.ipv4.ip_forward"] = "1"
    env = {"PORTLAB_NODE": json.dumps(config, separators=(",", ":"))}
    devices = []
    if node.vpn:
        sysctls["net.ipv4.conf.all.src_valid_mark"] = "1"
        devices.append("/dev/net/tun:/dev/net/tun")
        # wg-quick uses the kernel module when it loads and only then falls back to
        # wireguard-go, which insists on this variable before it runs on Linux.
        env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go"
        env["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1"
    interfaces = {i["name"]: f"{i['address']}/{i['prefix']}" for i in config["interfaces"]}
    return {
        "name": node.name,
        "sysctls": sysctls,
        "devices": devices,
        "environment": env,
        "labels": {
            d.LABEL_SCOPE: d.scope(),
            d.LABEL_LAB: lab.name,
            d.LABEL_INSTANCE: plan.instance,
            d.LABEL_NODE: node.name,
            d.LABEL_TOKEN: plan.token,
            d.LABEL_INTERFACES: json.dumps(interfaces, separators=(",", ":")),
            d.LABEL_SUBNETS: json.dumps({k: str(v) for k, v in plan.subnets.items()},
                                        separators=(",", ":")),
            "portlab.version": __version__,
        },
        "networks": [
            {"name": i.network, "address": str(address(plan.subnets[i.network], i.host))}
            for i in node.interfaces
        ],
        "extra_hosts": extra_hosts(plan, node),
    }


def network_model(plan: Plan, name: str) -> dict[str, Any]:
    subnet = plan.subnets[name]
    return {
        "name": name,
        "subnet": str(subnet),
        # Docker insists on a gateway address; keep it off the addresses labs use. With
        # inhibit_ipv4 the host never takes it, so the host is not on any lab network.
        "gateway": str(subnet.broadcast_address - 1),
        "labels": {
            d.LABEL_SCOPE: d.scope(),
            d.LABEL_LAB: plan.lab.name,
            d.LABEL_INSTANCE: plan.instance,
            d.LABEL_NETWORK: name,
            d.LABEL_SUBNET: str(subnet),
            d.LABEL_TOKEN: plan.token,
        },
    }


def compose(plan: Plan) -> str:
    """The compose file for this plan, as text."""
    template = _env.get_template("compose.yaml.j2")
    return template.render(
        version=__version__,
        lab=plan.lab,
        instance=plan.instance,
        project=plan.project,
        image=plan.image,
        nodes=[service_model(plan, n) for n in plan.lab.nodes],
        networks=[network_model(plan, n.name) for n in plan.lab.networks if not n.virtual],
    )
