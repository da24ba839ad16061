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
from portlab.backend.docker import client as docker_api
from portlab.backend.docker.compose import project_name
from portlab.model.plan import LOG_FILES, LOG_MAX_MIB, Plan, hosts, node_config, node_sysctls
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
        docker_api.LABEL_SCOPE: scope(),
        docker_api.LABEL_LAB: lab.name,
        docker_api.LABEL_INSTANCE: plan.instance,
        docker_api.LABEL_NODE: node.name,
        docker_api.LABEL_TOKEN: plan.token,
        docker_api.LABEL_SECRET: plan.secret,
        docker_api.LABEL_INTERFACES: _json({i["name"]: f"{i['address']}/{i['prefix']}"
                                   for i in config["interfaces"]}),
        docker_api.LABEL_SUBNETS: _json({k: str(v) for k, v in plan.subnets.items()}),
        docker_api.LABEL_PARAMS: _json(lab.params),
        docker_api.LABEL_NODE_IMAGE: plan.image,
        "portlab.version": __version__,
    }
    six = {i["name"]: f"{i['address6']}/{i['prefix6']}" for i in config["interfaces"]
           if "address6" in i}
    if six:
        labels[docker_api.LABEL_INTERFACES6] = _json(six)
    if node.vpn:
        devices.append("/dev/net/tun:/dev/net/tun")
        # wg-quick uses the kernel module when it loads and only then falls back to
        # wireguard-go, which insists on this variable before it runs on Linux.
        env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go"
        env["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1"
        labels[docker_api.LABEL_VPN] = "true"
    if plan.student:
        labels[docker_api.LABEL_STUDENT] = plan.student
    if plan.binding.key_seed:
        labels[docker_api.LABEL_KEY_SEED] = plan.binding.key_seed
    limits = None
    if plan.limits is not None:
        limits = {"pids": plan.limits.pids, "memory": f"{plan.limits.memory_mib}m",
                  "cpus": plan.limits.cpus, "fsize": plan.limits.file_mib * 2**20}
    return {
        "name": node.name,
        "limits": limits,
        "log": {"max-size": f"{LOG_MAX_MIB}m", "max-file": str(LOG_FILES)},
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
        docker_api.LABEL_SCOPE: scope(),
        docker_api.LABEL_LAB: plan.lab.name,
        docker_api.LABEL_INSTANCE: plan.instance,
        docker_api.LABEL_GRADER: node,
        docker_api.LABEL_TOKEN: plan.token,
        docker_api.LABEL_NODE_IMAGE: plan.image,
    }
    return {"name": f"{GRADER_PREFIX}{node}", "node": node, "labels": labels}


GRADER_PREFIX = "grader."  # node names have no dot: a grader's service name never clashes


# The seal: nothing a node sends reaches the host's own network stack, whatever frame it makes
# (a node is root with NET_RAW: it can put any frame on its link), and nothing of the host's
# reaches a node. Each lab network is a bridge on the host with no address of the host's
# (inhibit_ipv4), but the host's kernel would still answer ARP there for its other addresses,
# take IPv4 and IPv6 sent to the bridge's MAC, and have IPv6 link-local addresses on the bridge
# and on each port (the host's end of a node's veth), which announce themselves. Once the nodes
# run, a one-shot container on the host's network (NET_ADMIN, nothing more) seals each bridge
# and each of its ports:
#
# * the bridge's MTU below IPv6's minimum (1280): the host's kernel takes IPv6 off the device
#   altogether; frames between the nodes, bridged at layer 2, keep the nodes' own MTU;
# * on the bridge device, a tc ingress filter that drops every frame: what reaches the bridge
#   device is only what the bridge passes up to the host (frames for the host's MACs, and a
#   copy of every broadcast and multicast); frames between nodes never pass there;
# * on each port, no IPv6 address of the host's (address generation off, the link-local
#   flushed), a tc ingress filter that drops frames to the IEEE link-local group addresses
#   (01:80:c2:00:00:0X: a bridge hands those, LACP, LLDP, 802.1X, to the port's own network
#   stack), and an egress filter that drops the host's own frames (from the port's MAC or the
#   bridge's), so that no node learns the host's addresses either.
#
# The filters are classic BPF in tc's direct-action mode (sch_ingress's clsact and cls_bpf; no
# action module needed); they go with the devices when `down` removes the networks.
SEAL_MTU = 1279
TC_DROP_ALL = "1,6 0 0 2"  # ret TC_ACT_SHOT
# ldh [0]; jne 0x0180 -> pass; ld [2]; and 0xfffffff0; jne 0xc2000000 -> pass; drop; pass
TC_DROP_LINK_LOCAL = ("7,40 0 0 0,21 0 4 384,32 0 0 2,84 0 0 4294967280,21 0 1 3254779904,"
                      "6 0 0 2,6 0 0 4294967295")
SEAL_SCRIPT = (
    'set -e; '
    # mac DEV: its MAC as two numbers, its first four bytes and its last two (shell builtins
    # only: the script runs for every lab, and each process it starts is CPU on the host)
    'mac() { IFS=: read -r a b c d e f < "/sys/class/net/$1/address"; '
    'echo "$((0x$a$b$c$d)) $((0x$e$f))"; }; '
    # from_either A_HI A_LO B_HI B_LO: a cBPF that drops frames whose source MAC is A or B
    'from_either() { echo "10,32 0 0 6,21 0 2 $1,40 0 0 10,21 4 0 $2,32 0 0 6,21 0 3 $3,'
    '40 0 0 10,21 0 1 $4,6 0 0 2,6 0 0 4294967295"; }; '
    # ports BRIDGE: how many ports the bridge has, in $n
    'ports() { n=0; for p in "/sys/class/net/$1/brif/"*; do [ -e "$p" ] && n=$((n+1)); '
    'done; return 0; }; '
    # the commands for ip and tc, a line each, run as three batches at the end
    'nl=$(printf "\\n_"); nl=${nl%_}; clear=""; ipb=""; tcb=""; '
    'for spec in "$@"; do br=${spec%:*}; want=${spec#*:}; '
    f'ip link set dev "$br" mtu {SEAL_MTU}; '
    'if [ -e "/proc/sys/net/ipv6/conf/$br" ]; then '
    'echo "the host still has IPv6 on $br" >&2; exit 1; fi; '
    'clear="$clear""qdisc del dev $br clsact${nl}"; '
    'tcb="$tcb""qdisc add dev $br clsact${nl}'
    f'filter add dev $br ingress pref 1 protocol all bpf da bytecode \\"{TC_DROP_ALL}\\"${{nl}}"; '
    'i=0; ports "$br"; while [ "$n" -lt "$want" ]; do i=$((i+1)); '
    'if [ "$i" -gt 200 ]; then echo "$br has $n of its $want ports" >&2; exit 1; fi; '
    'sleep 0.05; ports "$br"; done; '
    'for port in "/sys/class/net/$br/brif/"*; do p=${port##*/}; '
    'ipb="$ipb""link set dev $p addrgenmode none${nl}addr flush dev $p${nl}"; '
    'clear="$clear""qdisc del dev $p clsact${nl}"; '
    'tcb="$tcb""qdisc add dev $p clsact${nl}'
    'filter add dev $p ingress pref 1 protocol all bpf da bytecode '
    f'\\"{TC_DROP_LINK_LOCAL}\\"${{nl}}'
    'filter add dev $p egress pref 1 protocol all bpf da bytecode '
    '\\"$(from_either $(mac "$p") $(mac "$br"))\\"${nl}"; done; done; '
    # one ip (IPv6 only: its flush takes the port's IPv6 addresses) and two tc, the first of
    # which clears what a device may have had already
    'printf %s "$ipb" | ip -6 -batch -; '
    'printf %s "$clear" | tc -force -batch - 2>/dev/null || true; '
    'printf %s "$tcb" | tc -batch -; '
    'echo sealed')
SEAL_NAME = "seal.host"  # node names have no dot: never a node's service name
BRIDGE_PREFIX = "pl-"  # the host's names for lab bridges: pl- and 12 hex digits


def bridge_name(plan: Plan, network: str) -> str:
    """The host's name for a lab network's bridge (15 characters, Linux's most): named, so
    that the seal can find it (and `portlab doctor`'s fixes can name them all: pl-+)."""
    return BRIDGE_PREFIX + hashlib.sha256(f"{plan.token}/{network}".encode()).hexdigest()[:12]


def seal_model(plan: Plan) -> dict[str, Any] | None:
    """The one-shot container that seals the lab's bridges off the host, once the nodes run."""
    ports = {n.name: sum(1 for node in plan.lab.nodes for i in node.interfaces
                         if i.network == n.name)
             for n in plan.lab.networks if not n.virtual}
    if not ports:
        return None
    specs = [f"{bridge_name(plan, net)}:{count}" for net, count in ports.items()]
    labels = {docker_api.LABEL_SCOPE: scope(), docker_api.LABEL_LAB: plan.lab.name,
              docker_api.LABEL_INSTANCE: plan.instance, docker_api.LABEL_SEAL: "host",
              docker_api.LABEL_TOKEN: plan.token}
    return {"name": SEAL_NAME, "bridges": [s.split(":")[0] for s in specs], "labels": labels,
            "entrypoint": ["sh", "-c", SEAL_SCRIPT, "seal", *specs],
            "after": [n.name for n in plan.lab.nodes]}


def network_model(plan: Plan, name: str) -> dict[str, Any]:
    subnet = plan.subnets[name]
    options = {"com.docker.network.bridge.enable_ip_masquerade": "false",
               "com.docker.network.bridge.inhibit_ipv4": "true",
               "com.docker.network.bridge.name": bridge_name(plan, name)}
    return {
        "options": options,
        "name": name,
        "subnet": str(subnet),
        # Docker insists on a gateway address; keep it off the addresses labs use. With
        # inhibit_ipv4 the host never takes it, so the host is not on any lab network.
        "gateway": str(subnet.broadcast_address - 1),
        "labels": {
            docker_api.LABEL_SCOPE: scope(),
            docker_api.LABEL_LAB: plan.lab.name,
            docker_api.LABEL_INSTANCE: plan.instance,
            docker_api.LABEL_NETWORK: name,
            docker_api.LABEL_SUBNET: str(subnet),
            docker_api.LABEL_TOKEN: plan.token,
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
