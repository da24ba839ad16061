"""A lab as typed data: the dataclasses the loader builds from lab.yaml.

A `Lab` is a lab with its params applied: every number in it is a number
(templates over `params` were rendered and validated when it was loaded), so
a lab loaded with other params (a per-student variant, `--param`) is simply
another `Lab`. The texts that depend on an instance (addresses, the token)
stay templates here; `portlab.model.context` renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from portlab.model import allocate
from portlab.model.yamlsrc import line_of

ParamValue = str | int | float | bool

DIFFICULTIES = ("beginner", "intermediate", "advanced")


@dataclass(frozen=True)
class Network:
    name: str
    kind: str  # public | private
    prefix: int
    prefer: IPv4Network | None
    label: str
    virtual: bool  # exists only inside nodes (e.g. a VPN tunnel), no Docker network
    ipv6: bool = False  # dual stack: an IPv6 /64 beside the IPv4 subnet
    prefer6: IPv6Network | None = None  # the /64 a first instance gets


@dataclass(frozen=True)
class Interface:
    name: str
    network: str
    host: int
    ipv6: bool = False  # on an IPv6 network: it has an IPv6 address too (same host number)


@dataclass(frozen=True)
class Route:
    to: str  # "default", a CIDR, or a network name
    via: str  # "node.iface"
    ipv6: bool = False  # an IPv6 route: to an IPv6 CIDR or network, via that interface's IPv6


@dataclass(frozen=True)
class Service:
    name: str
    run: str
    ready_tcp: int | None
    ready_udp: int | None


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...]
    forwarding: bool
    vpn: bool
    setup: str
    files: dict[str, str]
    services: tuple[Service, ...]
    after: tuple[str, ...] = ()  # nodes that must be ready before this one's setup starts

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True)
class Match:
    """An expectation that is not one value: any of `values` (`{any: [a, b]}`), or, with
    `negate`, none of them (`{not: a}`, `{not: [a, b]}`)."""

    values: tuple[str, ...]
    negate: bool = False

    def holds(self, got: str) -> bool:
        return (got in self.values) != self.negate

    def __str__(self) -> str:
        words = " or ".join(self.values)
        return f"not {words}" if self.negate else (f"any of {words}" if len(self.values) > 1
                                                   else words)


@dataclass(frozen=True)
class Probe:
    kind: str
    source: str  # node name ("from" in the file)
    target: str | None  # "node.iface", an address, or None
    port: int | None
    options: dict[str, Any]
    expect: dict[str, Any]
    key: str  # where it was defined, dotted ("checks[0].probes[1]"), for messages
    path: tuple[str | int, ...] = ()  # the same as a key path, for errors naming the line


# What a failing probe saw, in the words a check's hints are chosen by (`hint:` as a mapping);
# each probe kind says it (portlab.probes.base.ProbeResult.observed).
SEEN = {
    "refused": "the connection was refused at once (the port is closed)",
    "timed-out": "nothing came back: the packets were dropped on the way (filtered)",
    "unreachable": "no route, or an ICMP unreachable came back",
    "silent": "the connection was accepted, then nothing this probe understands came back",
    "wrong-answer": "an answer came back, but not the one expected (another server or "
                    "protocol, another page or status, or no proof of who made it)",
    "wrong-server": "a genuine answer, from another node than the one expected",
    "wrong-source": "the server saw the connection come from another address than expected",
    "relayed": "the server answered over another connection than the probe's (a relay)",
    "open": "it answered, where nothing should",
    "listening": "a program listens on the port, where none should",
    "not-listening": "no program listens on the port",
    "wrong-user": "the program that listens runs as another user",
    "wrong-program": "another program listens on the port",
    "in-clear": "the request crossed the capture in the clear, outside the tunnel",
    "wide": "a WireGuard peer is allowed more addresses than its own one",
}


@dataclass(frozen=True)
class Hint:
    """What a failing check tells the learner, a step at a time: the hint for what its failing
    probe saw (`when`, keyed by SEEN's words), else `otherwise`; and `commands`, the
    solution's own commands, given only after a few failed attempts (portlab.learner)."""

    otherwise: str = ""
    when: tuple[tuple[str, str], ...] = ()
    commands: str = ""
    mapping: bool = False  # written as a mapping (else one text: `hint: |`)

    def texts(self) -> tuple[tuple[str, str], ...]:
        """(key, text) of each text it holds, for templating and checks; the key is "" for a
        hint written as one text."""
        return tuple((k, v) for k, v in ((self._otherwise, self.otherwise), *self.when,
                                         ("commands", self.commands)) if v)

    @property
    def _otherwise(self) -> str:
        return "otherwise" if self.mapping else ""

    def __bool__(self) -> bool:
        return bool(self.texts())

    def for_seen(self, seen: str) -> tuple[str, str]:
        """(key, text) of the hint for what was seen: its own, else `otherwise`."""
        return next(((k, v) for k, v in self.when if k == seen),
                    (self._otherwise, self.otherwise))


@dataclass(frozen=True)
class Explain:
    """The learner's own rules that a failing check shows, read-only: iptables chains of one
    node, with which rules the probe's packets matched (portlab.probes.rules)."""

    node: str
    chains: tuple[tuple[str, str], ...]  # (table, chain) in the order shown; "ip6 filter": IPv6


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    task: str | None
    probes: tuple[Probe, ...]
    hint: Hint
    stretch: bool = False  # optional work: `stretch: true`, or its task is a stretch
    explain: Explain | None = None


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    text: str
    stretch: bool


@dataclass(frozen=True)
class WrongSolution:
    name: str
    description: str
    apply: dict[str, str]  # node -> script
    fails: tuple[str, ...]
    # check -> words its feedback (the hint for what was seen, the verdict, the learner's
    # rules) must hold: that it names this very mistake (`portlab test` proves it)
    says: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmissionFile:
    """One file a student hands in, and what happens to it on its node."""

    file: str  # its path in the submission folder ("router.sh", "laptop/wg0.conf")
    node: str
    path: str | None  # where it goes on the node; None: a shell script, run as root there
    mode: int  # its mode on the node
    run: str  # for a placed file: a command run on the node after it is placed (template)
    comment: str  # what the starter file says about it
    timeout: float  # seconds it may take (the script, or the command)
    solution: str = ""  # the reference content (template); a script's default: solution[node]


@dataclass(frozen=True)
class Range:
    """A whole number from `low` to `high`, for a varied param."""

    low: int
    high: int


@dataclass(frozen=True)
class Vary:
    """What differs from one student to the next: params, and the subnets of networks."""

    params: dict[str, Range | tuple[ParamValue, ...]] = field(default_factory=dict)
    networks: dict[str, IPv4Network] = field(default_factory=dict)  # network -> drawn within

    def __bool__(self) -> bool:
        return bool(self.params or self.networks)


@dataclass(frozen=True)
class DemoStep:
    """One step of a lab's guided walk (`portlab demo`)."""

    title: str  # template
    say: str  # what the trainer says (template)
    node: str | None = None  # where `run` runs
    run: str = ""  # a shell command line run there, its output shown (template)
    look: str = ""  # what to look at (template)
    trace: tuple[str, ...] = ()  # nodes traced while the step runs
    trace_filter: str = ""  # a tcpdump filter for that trace (template)
    check: bool = False  # run the lab's checks and show them
    solve: bool = False  # apply the reference solution, before `run`


@dataclass(frozen=True)
class Lab:
    name: str
    title: str
    summary: str
    difficulty: str
    concepts: tuple[str, ...]
    story: str
    access: str
    params: dict[str, ParamValue]  # as applied: the file's values, with any overrides
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    tasks: tuple[Task, ...]
    checks: tuple[Check, ...]
    solution: dict[str, str]
    wrong_solutions: tuple[WrongSolution, ...]
    untouched_fails: tuple[str, ...]
    directory: Path = field(compare=False)
    file: str = field(compare=False)
    defaults: dict[str, ParamValue] = field(default_factory=dict, compare=False)  # the file's
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict, compare=False,
                                                    repr=False)  # key path -> line in `file`
    submission: tuple[SubmissionFile, ...] = ()
    points: dict[str, int] = field(default_factory=dict)  # check id -> points (every check)
    pass_mark: int = 0  # points needed to pass a grade
    vary: Vary = field(default_factory=Vary)
    demo: tuple[DemoStep, ...] = ()
    order: int = 1000  # its place in the learning path (`portlab list`): lower comes first
    hidden_params: tuple[str, ...] = ()  # the learner finds these out: the brief hides them
    # mutants of `portlab test` (portlab.mutants) that survive the checks, and why
    survives: dict[str, str] = field(default_factory=dict)
    trace_filter: str = ""  # `trace: {filter: ...}`: `portlab trace`'s default (a template)

    def line(self, path: tuple[str | int, ...]) -> int | None:
        """The line of `path` in the lab file, or of the nearest key around it."""
        return line_of(self.lines, path)

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def wrong(self, name: str) -> WrongSolution | None:
        return next((w for w in self.wrong_solutions if w.name == name), None)

    def requests(self) -> list[allocate.Request]:
        return [allocate.Request(n.name, n.kind, n.prefix, n.prefer) for n in self.networks]

    def preferred_subnets(self) -> dict[str, IPv4Network]:
        return allocate.preferred(self.requests())

    def subnets6(self, subnets: Mapping[str, IPv4Network]) -> dict[str, IPv6Network]:
        """The IPv6 /64 of each IPv6 network, for an instance with these IPv4 subnets."""
        return {n.name: allocate.subnet6(subnets[n.name], n.prefer, n.prefer6)
                for n in self.networks if n.ipv6 and n.name in subnets}

    @property
    def max_points(self) -> int:
        return sum(self.points.values())

    def changed_params(self) -> dict[str, ParamValue]:
        """The params that differ from the file's own values (a variant's overrides)."""
        return {k: v for k, v in self.params.items() if self.defaults.get(k) != v}
