"""Turn a plan into a Compose file (compose-templates/compose.yaml.j2), with portlab's labels.

The rendered file is plain Compose format 2.4, which both `docker-compose`
v1 and `docker compose` v2 accept; the project name is passed with `-p`
(v1 rejects a top-level `name:`). It is complete on its own: `portlab render`
prints it, and the tests start it with plain Compose through pytest-docker.
What each node does at start comes from the plan (portlab.model.plan); this
module adds only what is Docker's: services, networks, labels.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2

from portlab import __version__
from portlab.backend.docker import client as d
from portlab.backend.docker.compose import project_name
from portlab.model.plan import Plan, hosts, node_config, node_sysctls
from portlab.model.types import Node
from portlab.names import scope


def templates_dir() -> Path:
    here = Path(__file__).resolve().parents[2]
    packaged = here / "_data" / "compose-templates"
    return packaged if packaged.is_dir() else here.parent / "compose-templates"


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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def service_model(plan: Plan, node: Node) -> dict[str, Any]:
    lab = plan.lab
    config = node_config(plan, node)
    sysctls = node_sysctls(node)
    env = {"PORTLAB_NODE": _json(config)}
    devices = []
    labels = {
        d.LABEL_SCOPE: scope(),
        d.LABEL_LAB: lab.name,
        d.LABEL_INSTANCE: plan.instance,
        d.LABEL_NODE: node.name,
        d.LABEL_TOKEN: plan.token,
        d.LABEL_SECRET: plan.secret,
        d.LABEL_INTERFACES: _json({i["name"]: f"{i['address']}/{i['prefix']}"
                                   for i in config["interfaces"]}),
        d.LABEL_SUBNETS: _json({k: str(v) for k, v in plan.subnets.items()}),
        d.LABEL_PARAMS: _json(lab.params),
        d.LABEL_NODE_IMAGE: plan.image,
        "portlab.version": __version__,
    }
    six = {i["name"]: f"{i['address6']}/{i['prefix6']}" for i in config["interfaces"]
           if "address6" in i}
    if six:
        labels[d.LABEL_INTERFACES6] = _json(six)
    if node.vpn:
        devices.append("/dev/net/tun:/dev/net/tun")
        # wg-quick uses the kernel module when it loads and only then falls back to
        # wireguard-go, which insists on this variable before it runs on Linux.
        env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go"
        env["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1"
        labels[d.LABEL_VPN] = "true"
    if plan.student:
        labels[d.LABEL_STUDENT] = plan.student
    if plan.binding.key_seed:
        labels[d.LABEL_KEY_SEED] = plan.binding.key_seed
    limits = None
    if plan.limits is not None:
        limits = {"pids": plan.limits.pids, "memory": f"{plan.limits.memory_mib}m"}
    return {
        "name": node.name,
        "limits": limits,
        "sysctls": sysctls,
        "devices": devices,
        "environment": env,
        "labels": labels,
        "networks": [{"name": i.network, "address": plan.address(node, i.network)}
                     for i in node.interfaces],
        "extra_hosts": [f"{name}:{ip}" for name, ip in hosts(plan, node)],
    }


def grader_model(plan: Plan, node: str) -> dict[str, Any]:
    labels = {
        d.LABEL_SCOPE: scope(),
        d.LABEL_LAB: plan.lab.name,
        d.LABEL_INSTANCE: plan.instance,
        d.LABEL_GRADER: node,
        d.LABEL_TOKEN: plan.token,
        d.LABEL_NODE_IMAGE: plan.image,
    }
    return {"name": f"{GRADER_PREFIX}{node}", "node": node, "labels": labels}


GRADER_PREFIX = "grader."  # node names have no dot: a grader's service name never clashes


# An IPv6 network's bridge: Docker gives it no IPv6, but the host's kernel would give it a
# link-local address of its own and answer neighbour discovery on it (for its own global
# addresses too), a way from the lab to the host. Below IPv6's minimum MTU (1280) the kernel
# takes IPv6 off the device altogether: no address, no answer, every IPv6 packet addressed to
# the host there dropped. Frames between the nodes, bridged at layer 2, keep the nodes' own MTU
# (1500). This runs once per instance, before its nodes start, in a one-shot container on the
# host's network (NET_ADMIN, nothing more), and fails unless IPv6 is gone from each bridge.
SEAL_MTU = 1279
SEAL_SCRIPT = (f'for br in "$@"; do ip link set dev "$br" mtu {SEAL_MTU} || exit 1; '
               'if [ -e "/proc/sys/net/ipv6/conf/$br" ]; then '
               'echo "the host still has IPv6 on $br" >&2; exit 1; fi; done')
SEAL_NAME = "seal.ipv6"  # node names have no dot: never a node's service name


def bridge_name(plan: Plan, network: str) -> str:
    """The host's name for an IPv6 network's bridge (15 characters, Linux's most): named, so
    that the seal can find it before Docker would say which it is."""
    return "pl6-" + hashlib.sha256(f"{plan.token}/{network}".encode()).hexdigest()[:11]


def seal_model(plan: Plan) -> dict[str, Any] | None:
    """The one-shot container that takes the host off the IPv6 networks' bridges, if any."""
    bridges = [bridge_name(plan, n.name) for n in plan.lab.networks if n.ipv6]
    if not bridges:
        return None
    labels = {d.LABEL_SCOPE: scope(), d.LABEL_LAB: plan.lab.name,
              d.LABEL_INSTANCE: plan.instance, d.LABEL_SEAL: "ipv6", d.LABEL_TOKEN: plan.token}
    return {"name": SEAL_NAME, "bridges": bridges, "labels": labels,
            "entrypoint": ["sh", "-c", SEAL_SCRIPT, "seal", *bridges]}


def network_model(plan: Plan, name: str) -> dict[str, Any]:
    subnet = plan.subnets[name]
    net = plan.lab.network(name)
    options = {"com.docker.network.bridge.enable_ip_masquerade": "false",
               "com.docker.network.bridge.inhibit_ipv4": "true"}
    if net is not None and net.ipv6:
        options["com.docker.network.bridge.name"] = bridge_name(plan, name)
    return {
        "options": options,
        "name": name,
        "subnet": str(subnet),
        # Docker insists on a gateway address; keep it off the addresses labs use. With
        # inhibit_ipv4 the host never takes it, so the host is not on any lab network.
        "gateway": str(subnet.broadcast_address - 1),
        "labels": {
            d.LABEL_SCOPE: scope(),
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
        project=project_name(plan.instance),
        image=plan.image,
        nodes=[service_model(plan, n) for n in plan.lab.nodes],
        graders=[grader_model(plan, n) for n in plan.graders],
        networks=[network_model(plan, n.name) for n in plan.lab.networks if not n.virtual],
        seal=seal_model(plan),
    )
