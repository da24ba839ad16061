"""One layout model of a lab's network, for every picture of it.

The terminal drawing (`portlab show`, portlab.views.topology), the Graphviz
diagram (`show --diagram`, the HTML report, the live page:
portlab.views.diagram) and the live page's lit links all read this model, so
they place the same nodes in the same order and name the same links.

A node's *home* is the first network it is on, in the lab's order of
networks (a tunnel only if it is on nothing else); nodes are columns in the
order they first appear that way. Each interface is one *link* between a
node and a network, named "node.iface" as everywhere else in portlab.
"""

from __future__ import annotations

from dataclasses import dataclass

from portlab.model.context import Binding


@dataclass(frozen=True)
class Link:
    """One interface: the line between a node and a network."""

    node: str
    iface: str
    network: str
    address: str
    address6: str = ""  # on an IPv6 network: its IPv6 address too

    @property
    def ref(self) -> str:
        return f"{self.node}.{self.iface}"


@dataclass(frozen=True)
class NetBox:
    name: str
    label: str
    subnet: str
    kind: str  # public | private
    virtual: bool  # a tunnel: exists only inside nodes
    subnet6: str = ""  # an IPv6 network's /64

    @property
    def internet(self) -> bool:
        return self.kind == "public" and not self.virtual


@dataclass(frozen=True)
class NodeBox:
    name: str
    role: str
    links: tuple[Link, ...]
    home: str  # the first network it is on ("" for a node on none)
    forwarding: bool  # it routes between its networks (a router, a NAT box)
    vpn: bool
    learner: bool  # the learner works here: the lab's solution or submission changes it


@dataclass(frozen=True)
class Layout:
    lab: str
    title: str
    networks: tuple[NetBox, ...]
    nodes: tuple[NodeBox, ...]  # in column order

    def node(self, name: str) -> NodeBox:
        return next(n for n in self.nodes if n.name == name)

    def link(self, node: str, iface: str) -> Link | None:
        return next((lk for n in self.nodes if n.name == node for lk in n.links
                     if lk.iface == iface), None)

    @property
    def links(self) -> list[Link]:
        return [lk for n in self.nodes for lk in n.links]


def of(binding: Binding) -> Layout:
    """The layout of a lab bound to an instance (or a preview of one): its real addresses."""
    lab = binding.lab
    learners = set(lab.solution) | {s.node for s in lab.submission}
    six = binding.subnets6
    nets = tuple(NetBox(n.name, n.label, str(binding.subnets[n.name]), n.kind, n.virtual,
                        str(six[n.name]) if n.name in six else "")
                 for n in lab.networks)
    order: list[str] = []
    home: dict[str, str] = {}
    real = [n for n in lab.networks if not n.virtual]
    for net in real + [n for n in lab.networks if n.virtual]:  # a tunnel is nobody's home
        for node in lab.nodes:
            if node.name not in home and any(i.network == net.name for i in node.interfaces):
                home[node.name] = net.name
                order.append(node.name)
    order += [n.name for n in lab.nodes if n.name not in home]
    boxes = []
    for name in order:
        found = lab.node(name)
        assert found is not None
        node = found
        links = tuple(Link(name, i.name, i.network, binding.addresses[f"{name}.{i.name}"],
                           binding.addresses6.get(f"{name}.{i.name}", ""))
                      for i in node.interfaces)
        boxes.append(NodeBox(name, binding.role(name), links, home.get(name, ""), node.forwarding,
                             node.vpn, name in learners))
    return Layout(lab.name, lab.title, nets, tuple(boxes))
