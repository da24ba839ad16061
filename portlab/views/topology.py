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

from portlab.views.layout import Layout


def draw(layout: Layout, width: int = 0) -> str:
    """The drawing; no wider than `width` (0: any) where it can be: the interfaces' labels
    then show each address's last part (".10"), which the list below the drawing spells out."""
    full = _draw(layout, short=False)
    if width and max((len(line) for line in full.splitlines()), default=0) > width:
        return _draw(layout, short=True)
    return full


def _draw(layout: Layout, *, short: bool) -> str:
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
        if short and "." in link.address:
            return f"{link.iface} .{link.address.rsplit('.', 1)[1]}"
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
    position = {n.name: k for k, n in enumerate(nets)}
    pending: dict[str, list[str]] = {}  # node -> the networks below its home it still reaches
    for node in layout.nodes:
        if node.name in home:
            pending[node.name] = sorted({lk.network for lk in node.links
                                         if lk.network != home[node.name]
                                         and lk.network in position}, key=position.__getitem__)
    for net in nets:
        attached = [n for n in order if on(n, net.name)]
        from_above = [n for n in attached if home[n] != net.name]
        below = [n for n in attached if home[n] == net.name]
        passing = [n for n in order if pending.get(n) and n not in attached
                   and position[home[n]] < position[net.name]]
        for n in from_above:
            pending[n].remove(net.name)
        onward = [n for n in from_above if pending[n]]  # crosses this bus to one further down
        title = f"{net.label} · {subnets[net.name]} · {net.kind}"
        if from_above:
            out.append(line({col[n]: "│" for n in passing + from_above}))
            out.append(line({col[n]: "│" for n in passing}
                            | {col[n]: ("╪" if n in onward else "╧") for n in from_above}
                            | {col[n]: "╤" for n in below}, "═"))
            out.append("  " + title)
        else:
            out.append("  " + title)
            out.append(line({col[n]: "╤" for n in below} | {col[n]: "│" for n in passing}, "═"))
        through = {col[n]: "│" for n in passing}
        if below or onward:
            out.append(line(through | {col[n]: "│ " + label(n, pending[n][0]) for n in onward}
                            | {col[n]: "│ " + label(n, net.name) for n in below}))
        if below:
            down = through | {col[n]: "│" for n in onward}
            out.append(line(down | {max(0, col[n] - 1): f"[{n}]" for n in below}))
            downs = [n for n in below if pending.get(n)]
            if downs:
                out.append(line(down | {col[n]: "│ " + label(n, pending[n][0]) for n in downs}))
    return "\n".join(out)
