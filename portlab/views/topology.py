"""Draw a lab's topology in the terminal: networks as buses, nodes hanging from them.

    the internet · 198.51.100.0/24 · public
    ═══╤═════════════════════╤═══════════════
       │ wan .10             │ wan .1
     [friend]             [router]
                             │ lan .1
    ═════════════════════════╧═════════╤═════
    your home LAN · 10.0.0.0/24 · private
                                       │ lan .10
                                   [gamer-pc]

Placed by portlab.views.layout, the model the diagram shares. A node hangs below the first
network it is on; a node on a later network too
(a router) continues down to that network's bus.
"""

from __future__ import annotations

from portlab.views.layout import Layout, NetBox


def draw(layout: Layout) -> str:
    nets = [n for n in layout.networks if not n.virtual]
    names = {n.name for n in nets}
    order = [n.name for n in layout.nodes if n.home in names]
    home = {n.name: n.home for n in layout.nodes if n.home in names}
    subnets = {n.name: n.subnet + (f" · {n.subnet6}" if n.subnet6 else "")
               for n in layout.networks}

    def on(node: str, net: str) -> bool:
        return any(lk.network == net for lk in layout.node(node).links)

    def label(node: str, net: str) -> str:
        link = next(lk for lk in layout.node(node).links if lk.network == net)
        return f"{link.iface} {link.address}"

    width = max([len(f"[{n}]") for n in order] +
                [len(label(n.name, lk.network)) + 2 for n in layout.nodes for lk in n.links]) + 3
    col = {name: 3 + k * width for k, name in enumerate(order)}
    total = 3 + width * max(1, len(order))

    def line(marks: dict[int, str], fill: str = " ") -> str:
        chars = [fill] * total
        for pos, text in marks.items():
            for j, ch in enumerate(text):
                if pos + j < total:
                    chars[pos + j] = ch
                else:
                    chars.append(ch)
        return "".join(chars).rstrip()

    out: list[str] = []
    later: dict[str, list[str]] = {}  # node -> networks it still has to reach
    for node in layout.nodes:
        if node.name in home:
            later[node.name] = [lk.network for lk in node.links if lk.network != home[node.name]]
    for net in nets:
        attached = [n for n in order if on(n, net.name)]
        from_above = [n for n in attached if home[n] != net.name]
        below = [n for n in attached if home[n] == net.name]
        passing = [n for n in order if later.get(n) and net.name not in later[n]
                   and home[n] != net.name and _reached(nets, home[n], net.name)]
        title = f"{net.label} · {subnets[net.name]} · {net.kind}"
        if from_above:
            out.append(line({col[n]: "│" for n in passing + from_above}))
            out.append(line({col[n]: ("╧" if n in from_above else "│") for n in attached +
                             passing} | {c: "╤" for c in [col[n] for n in below]}, "═"))
            out.append("  " + title)
        else:
            out.append("  " + title)
            out.append(line({col[n]: "╤" for n in below} | {col[n]: "│" for n in passing}, "═"))
        if below:
            out.append(line({col[n]: "│ " + label(n, net.name) for n in below} |
                            {col[n]: "│" for n in passing}))
            out.append(line({max(0, col[n] - 1): f"[{n}]" for n in below} |
                            {col[n]: "│" for n in passing}))
        for n in from_above:
            if net.name in later.get(n, []):
                later[n].remove(net.name)
        downs = [n for n in below if later.get(n)]
        if downs:
            out.append(line({col[n]: "│ " + label(n, later[n][0]) for n in downs} |
                            {col[n]: "│" for n in passing}))
    return "\n".join(out)


def _reached(nets: list[NetBox], start: str, here: str) -> bool:
    names = [n.name for n in nets]
    return names.index(start) < names.index(here)
