"""The mutant battery of `portlab test`: the wrong solutions nobody wrote down.

A lab's own `wrong_solutions` are the mistakes its author thought of. A mutant
is the lab's reference solution plus one plausible mistake or cheat, made
automatically from what the lab is (which nodes forward, which servers run
where, what the solution does), so that every lab is tried against the same
battery. A lab's checks should *kill* each mutant: at least one check fails.
A mutant that survives is a wrong setup the checks would pass; the lab either
gains a check that catches it, or declares why it survives
(`survives: {MUTANT: reason}` in its lab file; `portlab test` shows the
reason).

The battery (NODE is where the mistake is made):

    forward-open@NODE       FORWARD opened on a node that forwards: policy ACCEPT, chain
                            flushed (IPv4, and IPv6 on a dual-stack node)
    input-open@NODE         INPUT opened the same way on a node whose firewall the task touches
    extra-dnat@NODE:PORT    one more port forward on a router's public side, to another
                            server inside that no check expects to be reachable
    hidden-dnat@NODE        the same on a public port of its own (31337), not the server's
    relay@NODE              each port forward (DNAT) on NODE replaced by a userspace relay
                            (socat) on NODE itself: a new connection to the same server
    stand-in@NODE           each port forward on NODE replaced by a copy of the server it
                            leads to, run on NODE itself
    client-nat@NODE         the destination NAT done in NODE's own OUTPUT chain, on a client
                            that can reach the server directly, instead of on the router
    stopped@NODE/SERVICE    a server on a node the task touches, stopped after the solution
    allowed-ips@NODE        a WireGuard peer's AllowedIPs narrowed to exactly the addresses
                            the checks probe from NODE (a split tunnel that passes the checks)

Each mutant is worked out from the lab (which mutants apply) and then from the
solved instance itself (its real rules and servers), so it is right for every
variant of the lab. Mutants only change nodes of their own instance.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from portlab.errors import RuntimeProblem
from portlab.model.context import Binding
from portlab.model.types import Lab, Node, Service
from portlab.runtime.instance import Instance

# What a mistake does on a solved instance: node -> a shell script (already rendered).
Make = Callable[[Instance, Lab], dict[str, str]]


class NotApplicable(Exception):
    """The mutant cannot be made on this solved instance (the solution itself already does
    what it would undo): no verdict, and the reason is shown."""


@dataclass(frozen=True)
class Mutant:
    name: str  # "forward-open@router": what `survives:` names
    description: str
    make: Make = field(compare=False, repr=False)
    skip: tuple[str, ...] = ()  # nodes whose part of the solution is left out


@dataclass(frozen=True)
class Dnat:
    """A destination NAT rule, from the solution's text or a node's live rules."""

    chain: str  # PREROUTING, OUTPUT
    proto: str  # tcp, udp
    dport: int
    to_addr: str
    to_port: int
    dest: str = ""  # -d: the address it matches, if it names one
    iface: str = ""  # -i: the interface it matches, if it names one
    spec: tuple[str, ...] = ()  # the rule as iptables-save writes it, after "-A CHAIN"


# --- reading rules ----------------------------------------------------------------------------

_FLAGS_WITH_VALUE = {"-t", "--table", "-A", "--append", "-I", "--insert", "-p", "--protocol",
                     "-d", "--destination", "-i", "--in-interface", "--dport",
                     "--destination-port", "--to-destination", "-j", "--jump", "-m", "--match",
                     "-s", "--source", "-o", "--out-interface", "--ctstate", "--sport"}


def parse_dnat(words: list[str]) -> Dnat | None:
    """One iptables command line (or iptables-save rule) as a DNAT, or None if it is none."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word in _FLAGS_WITH_VALUE and i + 1 < len(words):
            opts[word] = words[i + 1]
            i += 2
            continue
        i += 1
    jump = opts.get("-j") or opts.get("--jump")
    chain = opts.get("-A") or opts.get("--append") or opts.get("-I") or opts.get("--insert")
    to = opts.get("--to-destination")
    port = opts.get("--dport") or opts.get("--destination-port")
    proto = opts.get("-p") or opts.get("--protocol") or ""
    if jump != "DNAT" or not chain or not to or not port or not port.isdigit() or \
            proto not in ("tcp", "udp"):
        return None
    addr, _, to_port = to.partition(":")
    try:
        ipaddress.IPv4Address(addr)
    except ValueError:
        return None
    dest = (opts.get("-d") or opts.get("--destination") or "").split("/")[0]
    return Dnat(chain, proto, int(port), addr, int(to_port) if to_port.isdigit() else int(port),
                dest, opts.get("-i") or opts.get("--in-interface") or "")


def dnats_in_script(text: str) -> list[Dnat]:
    """The DNAT rules an iptables script adds (its `iptables -t nat -A|-I ... -j DNAT` lines)."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("iptables"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if "nat" in words:
            rule = parse_dnat(words)
            if rule is not None:
                found.append(rule)
    return found


def live_dnats(inst: Instance, node: str) -> list[Dnat]:
    """The DNAT rules of NODE's nat PREROUTING chain now (iptables-save -t nat)."""
    done = inst.exec(node, ["iptables-save", "-t", "nat"])
    if done.exit_code != 0:
        raise RuntimeProblem(f"could not read the nat rules of {node}: {done.stderr.strip()}")
    found = []
    for line in done.stdout.splitlines():
        if not line.startswith("-A PREROUTING "):
            continue
        words = shlex.split(line)
        rule = parse_dnat(words)
        if rule is not None:
            found.append(Dnat(rule.chain, rule.proto, rule.dport, rule.to_addr, rule.to_port,
                              rule.dest, rule.iface, tuple(words[2:])))
    return found


# --- what a lab is ----------------------------------------------------------------------------


def touched(lab: Lab) -> list[str]:
    """The nodes the task is done on: the solution's and the submission's, in lab order."""
    names = set(lab.solution) | {f.node for f in lab.submission}
    return [n.name for n in lab.nodes if n.name in names]


def _has_ipv6(node: Node) -> bool:
    return any(i.ipv6 for i in node.interfaces)


def _mentions(lab: Lab, node: Node, pattern: str) -> bool:
    texts = [node.setup, lab.solution.get(node.name, "")]
    texts += [f.solution for f in lab.submission if f.node == node.name]
    return any(re.search(pattern, t) for t in texts)


def public_interfaces(lab: Lab, node: Node) -> list[str]:
    return [i.name for i in node.interfaces
            if (net := lab.network(i.network)) is not None and net.kind == "public"]


def inside_services(lab: Lab, router: Node) -> list[tuple[Node, Service, str]]:
    """Servers behind a router: on nodes sharing one of its non-public networks, with a TCP
    port; (node, service, that node's interface on the shared network)."""
    inside = {i.network for i in router.interfaces
              if (net := lab.network(i.network)) is not None and net.kind != "public"
              and not net.virtual}
    out = []
    for node in lab.nodes:
        if node.name == router.name:
            continue
        iface = next((i.name for i in node.interfaces if i.network in inside), None)
        if iface is None:
            continue
        out += [(node, svc, iface) for svc in node.services if svc.ready_tcp]
    return out


def solution_dnats(lab: Lab, binding: Binding, node: str) -> list[Dnat]:
    return dnats_in_script(binding.render(("solution", node), lab.solution.get(node, "")))


def node_of(binding: Binding, addr: str) -> tuple[str, str] | None:
    """(node, iface) whose address `addr` is."""
    for ref, value in binding.addresses.items():
        if value == addr:
            node, _, iface = ref.partition(".")
            return node, iface
    return None


def serve_command(lab: Lab, binding: Binding, node: str, port: int) -> str | None:
    """The portlab-serve command line of the lab's server on NODE at PORT, rendered."""
    found = lab.node(node)
    for j, svc in enumerate(found.services if found else ()):
        if svc.ready_tcp != port and svc.ready_udp != port:
            continue
        run = binding.render(("nodes", node, "services", j, "run"), svc.run).strip()
        if run.startswith("portlab-serve "):
            return run
    return None


# --- shell for the mistakes -------------------------------------------------------------------


def _open(chain: str, six: bool) -> str:
    lines = [f"iptables -P {chain} ACCEPT", f"iptables -F {chain}"]
    if six:
        lines += [f"ip6tables -P {chain} ACCEPT", f"ip6tables -F {chain}"]
    return "\n".join(lines) + "\n"


def _background(command: str, port: int, proto: str) -> str:
    """Start COMMAND in the background, detached, and wait until it listens on PORT."""
    flag = "-lun" if proto == "udp" else "-ltn"
    return (f"setsid {command} </dev/null >/dev/null 2>&1 &\n"
            f"for i in $(seq 100); do ss -H {flag} 'sport = :{port}' | grep -q . && break; "
            f"sleep 0.05; done\n")


def _undo(rule: Dnat) -> str:
    return "iptables -t nat -D PREROUTING " + " ".join(shlex.quote(w) for w in rule.spec) + "\n"


def _accept_in(rule: Dnat) -> str:
    return f"iptables -I INPUT -p {rule.proto} --dport {rule.dport} -j ACCEPT\n"


# --- the battery ------------------------------------------------------------------------------


def forward_open(node: Node) -> Mutant:
    script = _open("FORWARD", _has_ipv6(node))
    return Mutant(f"forward-open@{node.name}",
                  f"{node.name}'s FORWARD chain opened (policy ACCEPT, flushed)",
                  lambda inst, lab: {node.name: script})


def input_open(node: Node) -> Mutant:
    script = _open("INPUT", _has_ipv6(node))
    return Mutant(f"input-open@{node.name}",
                  f"{node.name}'s INPUT chain opened (policy ACCEPT, flushed)",
                  lambda inst, lab: {node.name: script})


def extra_dnat(router: Node, public: str, target: Node, service: Service, iface: str) -> Mutant:
    port = service.ready_tcp or 0
    return Mutant(f"extra-dnat@{router.name}:{port}",
                  f"{router.name} also forwards TCP {port} from {public} to {target.name}'s "
                  f"{service.name}", _forwards(router, public, target, iface, port, port))


HIDDEN_PORT = 31337  # a public port no lab uses, that a scanner knows (nmap-services)


def hidden_dnat(router: Node, public: str, target: Node, service: Service,
                iface: str) -> Mutant:
    """extra-dnat's quieter twin: the inside server forwarded on a public port of its own, so
    that a check knocking only on the server's own port misses it."""
    port = service.ready_tcp or 0
    return Mutant(f"hidden-dnat@{router.name}",
                  f"{router.name} also forwards TCP {HIDDEN_PORT} from {public} to "
                  f"{target.name}'s {service.name} (port {port})",
                  _forwards(router, public, target, iface, HIDDEN_PORT, port))


def _forwards(router: Node, public: str, target: Node, iface: str, outside: int,
              inside: int) -> Make:
    """A port forward on `router`: TCP `outside` on its `public` interface to `target`'s
    `inside` port, let through FORWARD."""
    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        addr = inst.binding(lab).address(f"{target.name}.{iface}")
        return {router.name: (
            f"iptables -t nat -A PREROUTING -i {public} -p tcp --dport {outside} "
            f"-j DNAT --to-destination {addr}:{inside}\n"
            f"iptables -I FORWARD -i {public} -d {addr} -p tcp --dport {inside} -j ACCEPT\n")}

    return make


def relay(node: Node) -> Mutant:
    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        script = ""
        relays: set[tuple[str, int]] = set()
        for rule in live_dnats(inst, node.name):
            script += _undo(rule)
            if (rule.proto, rule.dport) in relays:
                continue
            relays.add((rule.proto, rule.dport))
            kind = "UDP4" if rule.proto == "udp" else "TCP4"
            script += _accept_in(rule) + _background(
                f"socat {kind}-LISTEN:{rule.dport},fork,reuseaddr "
                f"{kind}:{rule.to_addr}:{rule.to_port}", rule.dport, rule.proto)
        return {node.name: script} if script else {}

    return Mutant(f"relay@{node.name}",
                  f"each port forward on {node.name} replaced by a userspace relay (socat) "
                  f"on {node.name}", make)


def stand_in(node: Node) -> Mutant:
    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        binding = inst.binding(lab)
        script = ""
        started: set[int] = set()
        for rule in live_dnats(inst, node.name):
            where = node_of(binding, rule.to_addr)
            command = serve_command(lab, binding, where[0], rule.to_port) if where else None
            if command is None:
                continue
            script += _undo(rule)
            if rule.dport in started:
                continue
            started.add(rule.dport)
            command = re.sub(r"--port\s+\d+", f"--port {rule.dport}", command)
            script += _accept_in(rule) + _background(command, rule.dport, rule.proto)
        return {node.name: script} if script else {}

    return Mutant(f"stand-in@{node.name}",
                  f"each port forward on {node.name} replaced by a copy of the server it "
                  f"leads to, run on {node.name} itself", make)


def client_nat(router: Node, client: Node, rules: list[Dnat]) -> Mutant:
    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        binding = inst.binding(lab)
        script = ""
        for rule in solution_dnats(lab, binding, router.name):
            dest = rule.dest or next((binding.address(f"{router.name}.{i.name}")
                                      for i in router.interfaces if i.name == rule.iface), "")
            if not dest:
                continue
            script += (f"iptables -t nat -A OUTPUT -d {dest} -p {rule.proto} --dport "
                       f"{rule.dport} -j DNAT --to-destination {rule.to_addr}:{rule.to_port}\n")
        return {client.name: script}

    return Mutant(f"client-nat@{client.name}",
                  f"the destination NAT done in {client.name}'s own OUTPUT chain instead of "
                  f"on {router.name} ({router.name}'s part of the solution left out)", make,
                  skip=(router.name,))


def stopped(node: Node, service: Service) -> Mutant:
    pid = f"/run/portlab/services/{service.name}.pid"  # the service's process group

    live = f'pgrep -r R,S,D,T,t -g "$(cat {pid})"'  # its processes that still run (not zombies)

    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        if inst.exec(node.name, ["sh", "-c", live]).exit_code != 0:
            raise NotApplicable(f"the solution itself stops {node.name}'s {service.name}")
        return {node.name: (f"pkill -TERM -g \"$(cat {pid})\"\n"
                            f"for i in $(seq 40); do {live} >/dev/null || exit 0; sleep 0.05; "
                            "done\n"
                            f"pkill -KILL -g \"$(cat {pid})\" || true\n")}

    return Mutant(f"stopped@{node.name}/{service.name}",
                  f"{node.name}'s {service.name} server stopped", make)


def allowed_ips(node: Node) -> Mutant:
    def make(inst: Instance, lab: Lab) -> dict[str, str]:
        binding = inst.binding(lab)
        probed = sorted({binding.address(binding.render((*p.path, "to"), p.target))
                         for c in lab.checks for p in c.probes
                         if p.source == node.name and p.target}, key=str)
        probed = [a for a in probed if _is_ipv4(a)]
        if not probed:
            return {}
        wanted = ", ".join(f"{a}/32" for a in probed)
        return {node.name: (
            "for conf in /etc/wireguard/*.conf; do\n"
            "  [ -e \"$conf\" ] || continue\n"
            "  name=$(basename \"$conf\" .conf)\n"
            "  wg-quick down \"$name\" >/dev/null 2>&1 || true\n"
            f"  sed -i 's#^[[:space:]]*AllowedIPs[[:space:]]*=.*#AllowedIPs = {wanted}#I' "
            "\"$conf\"\n"
            "  wg-quick up \"$name\"\n"
            "done\n")}

    return Mutant(f"allowed-ips@{node.name}",
                  f"{node.name}'s WireGuard AllowedIPs narrowed to exactly the addresses the "
                  f"checks probe from it", make)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def battery(lab: Lab) -> list[Mutant]:
    """Every mutant that applies to the lab, in a fixed order."""
    out: list[Mutant] = []
    binding = Binding.sample(lab)
    worked = touched(lab)
    for node in lab.nodes:
        if node.forwarding:
            out.append(forward_open(node))
    for name in worked:
        found = lab.node(name)
        if found is not None and _mentions(lab, found, r"\bINPUT\b|hook input"):
            out.append(input_open(found))
    for node in lab.nodes:
        public = public_interfaces(lab, node)
        if not node.forwarding or not public:
            continue
        forwarded = {(r.to_addr, r.to_port) for name in lab.solution
                     for r in solution_dnats(lab, binding, name)}
        forwarded |= {(r.to_addr, r.to_port) for r in dnats_in_script(
            binding.render(("nodes", node.name, "setup"), node.setup))}
        hidden = None
        for target, svc, iface in inside_services(lab, node):
            addr = binding.address(f"{target.name}.{iface}")
            if (addr, svc.ready_tcp) not in forwarded:
                out.append(extra_dnat(node, public[0], target, svc, iface))
                hidden = hidden or hidden_dnat(node, public[0], target, svc, iface)
        if hidden is not None:
            out.append(hidden)
    for node in lab.nodes:
        rules = solution_dnats(lab, binding, node.name) if node.name in lab.solution else []
        if not rules:
            continue
        out.append(relay(node))
        if any((w := node_of(binding, r.to_addr)) and serve_command(lab, binding, w[0],
                                                                    r.to_port)
               for r in rules):
            out.append(stand_in(node))
        for client in _nat_clients(lab, binding, node, rules):
            out.append(client_nat(node, client, rules))
    for name in worked:
        found = lab.node(name)
        if found is not None:
            out += [stopped(found, svc) for svc in found.services]
    for name in worked:
        found = lab.node(name)
        if found is not None and _mentions(lab, found, r"(?i)AllowedIPs"):
            out.append(allowed_ips(found))
    return out


def _nat_clients(lab: Lab, binding: Binding, router: Node, rules: list[Dnat]) -> list[Node]:
    """Clients that probe the router's forwarded ports and could reach the server directly
    (they share a network with it): where a DNAT in the client's own OUTPUT chain works."""
    mine = {f"{router.name}.{i.name}" for i in router.interfaces}
    ports = {r.dport for r in rules}
    servers = {w[0] for r in rules if (w := node_of(binding, r.to_addr))}
    out: list[Node] = []
    for check in lab.checks:
        for probe in check.probes:
            client = lab.node(probe.source)
            if client is None or client in out or client.name in servers | {router.name}:
                continue
            if probe.target not in mine or probe.port not in ports:
                continue
            nets = {i.network for i in client.interfaces}
            if any(i.network in nets for s in servers if (n := lab.node(s))
                   for i in n.interfaces):
                out.append(client)
    return out
