"""A lab's network as a picture (SVG or PNG), drawn by Graphviz from the layout model.

Networks are rounded boxes (the internet blue, private networks green, a
tunnel dashed), nodes are boxes, and each interface is a line between them
labelled with its name and address. The node the learner works on says so.

The SVG carries ids the HTML report and the live page use:
`node-<name>`, `net-<name>` and `link-<node>-<iface>` (one per interface),
and the class `link` on every interface's line.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from portlab.errors import UsageError
from portlab.views.layout import Layout

FORMATS = {".svg": "svg", ".png": "png"}
INSTALL_DOT = ("install Graphviz's `dot`: `sudo apt-get install graphviz` on Debian or Ubuntu "
               "(scripts/bootstrap does it), `brew install graphviz` on macOS; "
               "see https://graphviz.org/download/")

COLOURS = {"public": "#dbeafe", "private": "#dcfce7", "virtual": "#fef9c3"}


def link_id(node: str, iface: str) -> str:
    return f"link-{node}-{iface}"


def graph(layout: Layout) -> graphviz.Graph:
    g = graphviz.Graph(layout.lab, graph_attr={
        "rankdir": "TB", "nodesep": "0.6", "ranksep": "0.7", "fontname": "Helvetica",
        "label": layout.title, "labelloc": "t", "fontsize": "16", "bgcolor": "white",
        "id": f"lab-{layout.lab}"})
    g.attr("node", fontname="Helvetica", fontsize="12")
    g.attr("edge", fontname="Helvetica", fontsize="10", color="#475569", penwidth="2")
    for net in layout.networks:
        kind = "virtual" if net.virtual else net.kind
        what = "a tunnel, inside the nodes" if net.virtual else (
            "public: the internet" if net.internet else "private")
        subnets = net.subnet + (f"\n{net.subnet6}" if net.subnet6 else "")
        g.node(f"net_{net.name}", f"{net.label}\n{subnets}\n{what}", id=f"net-{net.name}",
               shape="box", style="rounded,filled" + (",dashed" if net.virtual else ""),
               fillcolor=COLOURS[kind], color="#64748b", **{"class": f"net {kind}"})
    for node in layout.nodes:
        lines = [node.name]
        if node.forwarding:
            lines.append("routes between its networks")
        if node.learner:
            lines.append("you work here")
        g.node(f"node_{node.name}", "\n".join(lines), id=f"node-{node.name}", shape="box",
               style="filled,bold" if node.learner else "filled",
               fillcolor="#fde68a" if node.learner else "#f8fafc",
               tooltip=node.role or node.name, **{"class": "node"})
    homes = {n.name: n.home for n in layout.nodes}
    for link in layout.links:
        net = next(n for n in layout.networks if n.name == link.network)
        # A node hangs below its home network, and its other networks hang below it (a
        # router between the internet and the LAN), as in the terminal drawing.
        ends = (f"node_{link.node}", f"net_{link.network}")
        if homes[link.node] == link.network:
            ends = ends[::-1]
        address = link.address + (f"\n{link.address6}" if link.address6 else "")
        g.edge(*ends, label=f" {link.iface} {address} ",
               id=link_id(link.node, link.iface), style="dashed" if net.virtual else "solid",
               tooltip=f"{link.ref} {address}", **{"class": "link"})
    return g


def render(layout: Layout, fmt: str) -> bytes:
    """The picture in `fmt` ("svg" or "png")."""
    try:
        return graph(layout).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UsageError("drawing a diagram needs Graphviz, and its `dot` program is not "
                         "installed here", hint=INSTALL_DOT) from None


def svg(layout: Layout) -> str:
    """The SVG picture alone (no XML prolog): to put inside an HTML page."""
    text = render(layout, "svg").decode()
    return text[text.index("<svg"):]


def write(layout: Layout, path: Path) -> str:
    """Write the picture to `path`, its format by the file's suffix. The format."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell what picture to write from the name '{path.name}'",
                         hint="end the file's name with .svg or .png")
    data = render(layout, fmt)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return fmt
