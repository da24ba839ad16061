"""The status of an instance (docs/status-json.md): its nodes, networks, image and WireGuard.

Read from the engine's labels and listing, so it works whatever the lab file
says now; only the WireGuard part asks the node itself (`wg show`).
"""

from __future__ import annotations

import json
from typing import Any

from portlab.backend.base import NodeInfo
from portlab.runtime.instance import Instance

STATUS_FORMAT = 1


def status(inst: Instance) -> dict[str, object]:
    """The documented status of one instance."""
    backend = inst.backend
    fresh = backend.nodes(inst.name)  # states now, not as they were when it was found
    nodes: list[dict[str, Any]] = []
    present: dict[str, bool] = {}  # image name -> does it still name an image?
    for name in sorted(inst.nodes):
        node = fresh.get(name)
        if node is None:
            continue  # removed meanwhile
        if node.image not in present:  # deleted under a running lab: the nodes keep their copy
            present[node.image] = backend.image_exists(node.image) if node.image else True
        nodes.append({
            "name": name,
            "container": node.engine_name,
            "state": node.state,
            "image": node.image,
            "image_present": present[node.image],
            "interfaces": [{"name": k, "address": v,
                            **({"address6": node.interfaces6[k]} if k in node.interfaces6
                               else {})}
                           for k, v in node.interfaces.items()],
            "wireguard": _wireguard(inst, node) if node.vpn and node.running else None,
        })
    networks = [{"name": name, "docker_network": net.engine_name, "subnet": net.subnet}
                for name, net in sorted(inst.info.networks.items())]
    states = {n["state"] for n in nodes}
    overall = "running" if states == {"running"} else ("stopped" if not nodes else "degraded")
    images = sorted({str(n["image"]) for n in nodes})
    return {
        "instance": inst.name,
        "lab": inst.lab_name,
        "project": inst.info.project,
        "state": overall,
        "image": images[0] if len(images) == 1 else images,
        "image_present": all(present.values()),
        "params": inst.params,
        "student": inst.info.student or None,
        "networks": networks,
        "nodes": nodes,
    }


def _wireguard(inst: Instance, node: NodeInfo) -> dict[str, Any]:
    """Which WireGuard implementation the node can use, and what its wg interfaces are.

    `wg show interfaces` names the WireGuard interfaces of either kind (kernel ones by
    netlink, wireguard-go's by their control sockets); the link's kind tells them apart:
    "wireguard" is the kernel module, a TUN device is wireguard-go.
    """
    script = ('printf "%s\\n" "$(cat /run/portlab/wireguard 2>/dev/null)" '
              '"$(wg show interfaces 2>/dev/null)"; ip -j -d link show')
    out = inst.backend.exec(node, ["sh", "-c", script])
    lines = out.stdout.split("\n", 2)
    available = lines[0].strip() or "unknown"
    wg_names = lines[1].split() if len(lines) > 1 else []
    kinds: dict[str, str] = {}
    try:
        for link in json.loads(lines[2]) if len(lines) > 2 else []:
            kinds[link.get("ifname", "")] = (link.get("linkinfo") or {}).get("info_kind", "")
    except ValueError:
        pass
    interfaces = {name: "kernel" if kinds.get(name) == "wireguard" else "userspace"
                  for name in wg_names}
    return {"available": available, "interfaces": interfaces}
