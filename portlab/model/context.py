"""The one template context of a lab: a lab bound to an instance's subnets and token.

Every text of a lab that is a template (the brief, node setup, files and
services, check titles, probe targets and expectations, hints, solutions) is
rendered here, in the context a `Binding` builds, and nowhere else. A binding
comes from one of three places, and that is the only difference between them:

* a plan, for `portlab up` (fresh subnets and token; `portlab.model.plan`);
* a running instance, for `check`, `solve`, `show` and `status` (its labels);
* a preview, for `portlab show` of a lab that is not up (preferred subnets,
  and a placeholder token, so keys print as placeholders).

What templates see is documented in docs/lab-format.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from portlab.errors import LabError
from portlab.model import templating, wgkeys
from portlab.model.templating import Table
from portlab.model.types import Lab, Match
from portlab.model.yamlsrc import Path as KeyPath
from portlab.model.yamlsrc import dotted

SAMPLE_TOKEN = "0123456789abcdef"  # what loading renders every template with, to try it
PREVIEW_TOKEN = "<token>"  # a lab shown before it is up: keys print as placeholders


def address(subnet: IPv4Network | IPv6Network, host: int) -> IPv4Address | IPv6Address:
    return subnet.network_address + host


@dataclass(frozen=True)
class Binding:
    """A lab bound to one instance: its subnets and its token."""

    lab: Lab
    instance: str
    subnets: Mapping[str, IPv4Network]
    token: str
    running: bool = field(default=False, compare=False)  # bound to an instance that is up
    # What WireGuard keys are derived from: the token, unless the instance is a student's
    # variant, whose keys stay the same from `portlab show --student` to the grade.
    key_seed: str = ""
    # What the nodes' answer keys come from (portlab.node.answers): kept by portlab, given to
    # no node and no template; checks verify the servers' answers with it.
    secret: str = field(default="", compare=False, repr=False)

    @classmethod
    def preview(cls, lab: Lab) -> Binding:
        """The lab as a first instance would be on an empty machine (for `portlab show`)."""
        return cls(lab, lab.name, lab.preferred_subnets(), PREVIEW_TOKEN)

    @classmethod
    def sample(cls, lab: Lab) -> Binding:
        """What loading tries every template with."""
        return cls(lab, lab.name, lab.preferred_subnets(), SAMPLE_TOKEN)

    def _addresses(self, subnets: Mapping[str, IPv4Network | IPv6Network]) -> dict[str, str]:
        """"node.iface" -> that interface's address in `subnets`, for interfaces on them."""
        return {f"{node.name}.{iface.name}": str(address(subnets[iface.network], iface.host))
                for node in self.lab.nodes for iface in node.interfaces
                if iface.network in subnets}

    @cached_property
    def addresses(self) -> dict[str, str]:
        """"node.iface" -> that interface's address."""
        return self._addresses(self.subnets)

    @cached_property
    def subnets6(self) -> dict[str, IPv6Network]:
        """The IPv6 /64 of each IPv6 network (it follows from the IPv4 subnet)."""
        return self.lab.subnets6(self.subnets)

    @cached_property
    def addresses6(self) -> dict[str, str]:
        """"node.iface" -> that interface's IPv6 address, for interfaces on IPv6 networks."""
        return self._addresses(self.subnets6)

    def address(self, ref: str, ipv6: bool = False) -> str:
        """The address of "node.iface" (its IPv6 one with `ipv6`), or `ref` itself when it is
        no such reference."""
        return (self.addresses6 if ipv6 else self.addresses).get(ref, ref)

    def first_address(self, node: str, ipv6: bool = False) -> str:
        found = self.lab.node(node)
        table = self.addresses6 if ipv6 else self.addresses
        refs = [f"{node}.{i.name}" for i in (found.interfaces if found else ())]
        return next((table[r] for r in refs if r in table), "")

    @cached_property
    def context(self) -> dict[str, Any]:
        """What every lab template sees (documented in docs/lab-format.md)."""
        subnets = self.subnets

        def ip(network: str, host: int) -> str:
            """The address of host number `host` on `network`, e.g. ip('tunnel', 2)."""
            if network not in subnets:
                raise ValueError(f"ip(): no network called '{network}'")
            return str(address(subnets[network], int(host)))

        def ip6(network: str, host: int) -> str:
            """The IPv6 address of host number `host` on an IPv6 network, e.g. ip6('lan', 20)."""
            if network not in self.subnets6:
                raise ValueError(f"ip6(): no IPv6 network called '{network}'")
            return str(address(self.subnets6[network], int(host)))

        def spare_ip(network: str) -> str:
            """An address on `network` that no node has, picked at random each time it is
            rendered: a destination no check names in advance (a probe "to any other
            address" that a rule written for the named ones cannot anticipate)."""
            if network not in subnets:
                raise ValueError(f"spare_ip(): no network called '{network}'")
            net = subnets[network]
            taken = {iface.host for node in self.lab.nodes for iface in node.interfaces
                     if iface.network == network}
            last = net.num_addresses - 3  # below Docker's gateway (broadcast - 1)
            free = [h for h in range(2, last + 1) if h not in taken]
            if not free:
                raise ValueError(f"spare_ip(): network '{network}' has no free address")
            return str(address(net, secrets.choice(free)))

        return {
            "lab": self.lab.name,
            "instance": self.instance,
            "token": self.token,
            "addr": Table("addr", self.addresses),
            "subnet": Table("subnet", {name: str(net) for name, net in subnets.items()}),
            "prefix": Table("prefix", {name: net.prefixlen for name, net in subnets.items()}),
            "params": Table("params", self.lab.params),
            "ip": ip,
            "addr6": Table("addr6", self.addresses6),
            "subnet6": Table("subnet6", {name: str(net) for name, net in self.subnets6.items()}),
            "ip6": ip6,
            "spare_ip": spare_ip,
            **wgkeys.template_functions(self.key_seed or self.token),
        }

    def render(self, path: KeyPath, text: str) -> str:
        """One of the lab's templates (its key `path`), rendered. Loading tried each with a
        sample instance, yet a template can depend on the instance or its token: a failure
        here is a LabError too, naming the file, the line and the key."""
        try:
            return templating.render(text, self.context)
        except Exception as exc:
            raise LabError(self.lab.file, dotted(path), templating.describe(exc),
                           self.lab.line(path)) from None

    def role(self, node: str) -> str:
        """A node's `role:` (a template like the story), rendered."""
        found = self.lab.node(node)
        return self.render(("nodes", node, "role"), found.role).strip() if found else ""

    def first_problem(self) -> tuple[KeyPath, str] | None:
        """The first template of the lab that does not render here, and why."""
        for path, text in template_fields(self.lab):
            if text:
                problem = templating.problem(text, self.context)
                if problem:
                    return path, problem
        return None


def template_fields(lab: Lab) -> Iterator[tuple[KeyPath, str]]:
    """Every text of a lab that is a Jinja2 template, with its key path."""
    yield ("story",), lab.story
    yield ("access",), lab.access
    for i, task in enumerate(lab.tasks):
        yield ("tasks", i, "title"), task.title
        yield ("tasks", i, "text"), task.text
    for node in lab.nodes:
        base: KeyPath = ("nodes", node.name)
        yield base + ("role",), node.role
        yield base + ("setup",), node.setup
        for fpath, content in node.files.items():
            yield base + ("files", fpath), content
        for j, svc in enumerate(node.services):
            yield base + ("services", j, "run"), svc.run
    if lab.trace_filter:
        yield ("trace", "filter"), lab.trace_filter
    for i, check in enumerate(lab.checks):
        yield ("checks", i, "title"), check.title
        for key, text in check.hint.texts():
            yield ("checks", i, "hint") + ((key,) if key else ()), text
        for j, probe in enumerate(check.probes):
            if probe.target:
                yield ("checks", i, "probes", j, "to"), probe.target
            for key, value in probe.options.items():
                if isinstance(value, str):
                    yield ("checks", i, "probes", j, key), value
            for key, value in probe.expect.items():
                if isinstance(value, str):
                    yield ("checks", i, "probes", j, "expect", key), value
                elif isinstance(value, Match):
                    for text in value.values:
                        yield ("checks", i, "probes", j, "expect", key), text
    for node_name, script in lab.solution.items():
        yield ("solution", node_name), script
    for i, wrong in enumerate(lab.wrong_solutions):
        for node_name, script in wrong.apply.items():
            yield ("wrong_solutions", i, "apply", node_name), script
    for i, item in enumerate(lab.submission):
        yield ("submission", i, "run"), item.run
        yield ("submission", i, "solution"), item.solution
    for i, step in enumerate(lab.demo):
        for key in ("title", "say", "run", "look"):
            yield ("demo", i, key), getattr(step, key)
        yield ("demo", i, "trace", "filter"), step.trace_filter
