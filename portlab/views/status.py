"""`portlab status` for people (the JSON form is runtime.inspect.status, docs/status-json.md)."""

from __future__ import annotations

from typing import Any


def text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No portlab lab is up. Start one with `portlab up <lab>` (see `portlab list`).\n"
    lines = []
    for row in rows:
        lines.append(f"{row['instance']}  lab {row['lab']}, {row['state']}, image {row['image']}")
        for gone in sorted({n["image"] for n in row["nodes"] if not n["image_present"]}):
            lines.append(f"  image {gone} was deleted while the lab ran:\n"
                         "  its nodes keep running on their own copy; the next `portlab up` "
                         "builds it again")
        if row.get("params"):
            lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in row["params"].items()))
        nets = ", ".join(f"{n['name']} {n['subnet']}" for n in row["networks"])
        lines.append(f"  networks: {nets}")
        for node in row["nodes"]:
            addrs = "  ".join(f"{i['name']} {i['address']}"
                              + (f" {i['address6']}" if "address6" in i else "")
                              for i in node["interfaces"])
            line = f"  {node['name']:<10} {node['state']:<8} {addrs}"
            wg = node.get("wireguard")
            if wg:
                ifs = ", ".join(f"{k} ({v})" for k, v in wg["interfaces"].items()) or "none up"
                line += f"\n  {'':<10} WireGuard: {wg['available']} available; tunnels: {ifs}"
            lines.append(line)
    return "".join(line + "\n" for line in lines)
