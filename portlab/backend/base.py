"""The seam between portlab and a container engine: the one interface every backend implements.

Everything portlab does to real machines goes through a `Backend`: start an
instance from a plan, list and remove instances, run commands on a node
(plain, or streaming line by line), copy files onto a node, follow a node's
log, build its node image. Docker with Compose is the implementation today
(`portlab.backend.docker`); docs/architecture.md says what a second one
(Kubernetes with Multus networks) would implement.

Everything that crosses the seam is one of the plain, typed values below, so
the code above it (runtime, probes, views, CLI) never holds an engine's own
objects and never imports an engine's SDK. State is the engine's own: an
instance is what the engine lists with portlab's labels, never a state file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, ClassVar, NoReturn, Protocol

from portlab.errors import PortlabError, RuntimeProblem
from portlab.model.types import ParamValue

if TYPE_CHECKING:  # kept out of the import: `portlab up` starts Compose before loading them
    from portlab.model.plan import Plan
    from portlab.progress import Progress


@dataclass(frozen=True)
class ExecResult:
    """A command that ran on a node to its end."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class NodeInfo:
    """One node of an instance, as the engine lists it."""

    name: str  # the lab's name for it ("router")
    ref: str  # the engine's id for it (a container id)
    engine_name: str  # the engine's name for it (a container name)
    state: str  # "running", "exited", "created", ...
    status: str  # the engine's words for it: "Up 3 seconds", "Exited (137) 2 seconds ago"
    image: str  # the node image it runs, as it was named at start
    interfaces: dict[str, str] = field(default_factory=dict)  # lab interface -> "address/prefix"
    interfaces6: dict[str, str] = field(default_factory=dict)  # the same, IPv6 (dual stack)
    vpn: bool = False  # it may run WireGuard (tun device, WireGuard environment)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def why_not_running(self) -> str:
        return self.status or self.state


@dataclass(frozen=True)
class NetworkInfo:
    name: str  # the lab's name for it ("home")
    ref: str  # the engine's id for it
    engine_name: str  # the engine's name for it
    subnet: str


@dataclass
class InstanceInfo:
    """One lab instance (running, or half-started), from the engine's labels alone."""

    name: str
    lab: str
    token: str
    project: str  # the engine's name for the whole instance (a Compose project)
    params: dict[str, ParamValue] = field(default_factory=dict)  # as it was started with
    subnets: dict[str, IPv4Network] = field(default_factory=dict)  # virtual ones included
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    networks: dict[str, NetworkInfo] = field(default_factory=dict)
    student: str = ""  # whose variant it runs, if a student's
    key_seed: str = ""  # what its WireGuard keys are derived from, if not its token
    secret: str = ""  # what its nodes' answer keys come from (portlab.node.answers)
    # node -> the grader beside it (a grade's instance: see portlab.model.plan.Plan.graders)
    graders: dict[str, NodeInfo] = field(default_factory=dict)


@dataclass
class Removed:
    containers: int = 0
    networks: int = 0
    instances: dict[str, str] = field(default_factory=dict)  # instance -> its lab (portlab's)


@dataclass
class Pruned:
    """What `prune` removed (or, with dry_run, would remove)."""

    instances: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)  # names
    networks: list[str] = field(default_factory=list)  # names
    images: list[str] = field(default_factory=list)  # tags
    leftovers: list[str] = field(default_factory=list)  # image ids, folders
    kept_images: list[str] = field(default_factory=list)  # unused old tags (without images=True)
    dry_run: bool = False


@dataclass(frozen=True)
class FileCopy:
    """A file to put on a node: its content and its mode (owned by root)."""

    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class AddressPool:
    """A pool the engine carves networks from when none is given: `base` in /`size` blocks."""

    base: IPv4Network
    size: int


@dataclass(frozen=True)
class EngineNetwork:
    """A network the engine has (any, not only portlab's), for comparing address ranges."""

    name: str
    subnets: tuple[IPv4Network, ...]
    portlab: bool  # carries portlab's labels (of any scope)


class Status(str, Enum):
    """A doctor's finding: ok, or what is wrong and how much."""

    OK = "ok"
    WARN = "warn"  # labs run, but something is slower, weaker or surprising
    FAIL = "fail"  # labs (or some of them) cannot run

    @property
    def rank(self) -> int:
        return {"ok": 0, "warn": 1, "fail": 2}[self.value]


Figure = str | int | float | bool | None | list[str]


@dataclass(frozen=True)
class Finding:
    """One of `portlab doctor`'s checks, done. `id` is stable (kebab-case); `what` says what
    was found, with its figures; `fix` (for warn and fail) is a command or a config line;
    `figures` the same numbers for machines. A backend makes those about its engine itself
    (EngineFacts.findings); the doctor makes the rest."""

    id: str
    status: Status
    what: str
    fix: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status.value, "what": self.what,
                "fix": self.fix or None, "figures": dict(self.figures)}


@dataclass(frozen=True)
class EngineFacts:
    """What the engine says about itself and the machine it runs on, for `portlab doctor`.

    Asking never raises: an engine that does not answer is a fact (`reachable` False, with
    `problem` and `hint` saying why and what to do). Empty strings and None are "not known".
    """

    reachable: bool
    problem: str = ""
    hint: str = ""
    engine: str = ""  # its name for people: "Docker"
    # what the backend judged about its engine itself, one Finding per id of the backend's
    # ENGINE_CHECKS, in that order (Docker: its Compose, its storage driver)
    findings: tuple[Finding, ...] = ()
    remote: bool = False  # the engine runs on another machine (its host facts are not ours)
    version: str = ""
    api_version: str = ""
    operating_system: str = ""
    kernel: str = ""
    root_dir: str = ""  # where the engine keeps images and containers
    rootless: bool = False
    cgroup_driver: str = ""
    cgroup_version: str = ""
    pids_limit: bool | None = None  # the engine can hold a container to a number of processes
    memory_limit: bool | None = None
    swap_limit: bool | None = None  # ... and memory plus swap
    address_pools: tuple[AddressPool, ...] = ()
    pools_from: str = ""  # where address_pools come from (the engine, a config file, defaults)
    networks: tuple[EngineNetwork, ...] = ()
    image: str = ""  # the node image this portlab uses
    image_present: bool | None = None
    image_others: tuple[str, ...] = ()  # other tags of its repository (older portlab versions)
    base_present: bool | None = None  # the layer below it (building only the rest is quick)


@dataclass(frozen=True)
class NodeProbe:
    """What a throwaway node (no network, removed at once) found out about the kernel it shares
    with the host. `ran` False: no node could be started (`problem` says why)."""

    ran: bool
    problem: str = ""
    image: str = ""  # the image it ran
    iptables_version: str = ""  # as `iptables --version` says it in the node
    iptables_works: bool | None = None  # `iptables -S` worked there
    iptables_error: str = ""
    tun: bool | None = None  # a TUN interface could be made there (what wireguard-go needs)
    tun_error: str = ""
    wireguard_kernel: bool | None = None  # a kernel WireGuard link could be made there
    seal: bool | None = None  # tc's clsact and cls_bpf work there (what sealing a lab needs)
    seal_error: str = ""


class Stream(Protocol):
    """A command running on a node whose output is read as it comes, line by line.

    Leaving the `with` block (or `stop()`) ends the command on the node, so nothing of
    it keeps running there, whether the reader stopped early, was interrupted (Ctrl-C)
    or the command ended by itself.
    """

    def __iter__(self) -> Iterator[str]:
        """Lines of its standard output, without their line ends."""

    def stop(self) -> None:
        """End the command on the node (TERM, then KILL) and wait for it."""

    @property
    def exit_code(self) -> int | None:
        """Its exit code once it ended, else None."""

    @property
    def stderr(self) -> str:
        """What it wrote to standard error so far."""

    def __enter__(self) -> Stream: ...

    def __exit__(self, *exc: object) -> None: ...


class Terminal(Protocol):
    """A program on a node with a terminal of its own (a TTY exec): what a page's terminal
    talks to. Its output is raw terminal bytes (escapes included), for a terminal emulator.

    `fileno()` becomes readable when output is waiting, so an event loop can wait on it;
    `read()` returns what is there without blocking: None when nothing is, b"" once the
    program ended.
    `close()` ends the program on the node, whatever it was doing.
    """

    def fileno(self) -> int: ...

    def read(self) -> bytes | None: ...

    def write(self, data: bytes) -> None: ...

    def resize(self, rows: int, cols: int) -> None: ...

    def close(self) -> None: ...


class NodeRunner(Protocol):
    """Runs commands on the nodes of one instance, by the lab's node names (what probes get:
    portlab.runtime.Instance is one)."""

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult: ...

    def stream(self, node: str, argv: Sequence[str]) -> Stream: ...


class SubnetTaken(RuntimeProblem):
    """The engine refused a subnet of the plan: someone took it since it was allocated."""


class Backend(Protocol):
    """What portlab needs from a container engine. The only code that talks to one."""

    name: str
    # The doctor's checks about this engine alone (id -> what it is for), whose findings
    # facts() makes: a class attribute, so `portlab doctor --help` lists them without an engine.
    ENGINE_CHECKS: ClassVar[dict[str, str]]
    # Where the engine keeps images unless it says otherwise (the error path's disk check)
    data_root: str

    # --- the node image ---
    def image_tag(self) -> str:
        """The node image this version of portlab uses (named by a hash of its content)."""

    def image_exists(self, ref: str) -> bool: ...

    def ensure_image(self, progress: Progress, *, offline: bool | None = None) -> str:
        """The node image, built first if it is missing."""

    def build_image(self, progress: Progress, *, offline: bool | None = None,
                    force: bool = False) -> str: ...

    # --- instances ---
    def instances(self) -> dict[str, InstanceInfo]:
        """Every instance of this scope the engine knows about, by name."""

    def nodes(self, instance: str) -> dict[str, NodeInfo]:
        """The nodes of one instance, asked afresh (a node killed a moment ago shows)."""

    def taken_subnets(self) -> list[IPv4Network]:
        """Subnets a new instance must not use: the engine's networks', the host's own."""

    def lab_subnets(self) -> list[tuple[IPv4Network, str]]:
        """Of those, the ones portlab's labs hold, of any scope, each with its instance's name:
        a grade's is free again when the grade ends, so a student's variant that needs it
        waits. Optional: without it, such a variant fails at once, as for any other subnet."""

    def render(self, plan: Plan) -> str:
        """The engine's own description of the plan (a Compose file), as text."""

    def early_start(self, instance: str) -> AbstractContextManager[object | None]:
        """Start what can start before the plan exists; hand what it yields to `start`."""

    def start(self, plan: Plan, progress: Progress, early: object | None = None) -> InstanceInfo:
        """Create the instance's networks and nodes; raises SubnetTaken if the engine refuses
        a subnet. Readiness is not waited for here (see portlab.runtime.ready)."""

    def remove(self, instance: str, progress: Progress) -> Removed:
        """Remove every object of the instance, until the engine lists none."""

    def prune(self, progress: Progress, *, images: bool = False, current: bool = False,
              dry_run: bool = False) -> Pruned:
        """Remove every object of this scope and what interrupted builds left."""

    # --- nodes ---
    def exec(self, node: NodeInfo, argv: Sequence[str]) -> ExecResult:
        """Run argv on the node (no shell around it) to its end."""

    def stream(self, node: NodeInfo, argv: Sequence[str]) -> Stream:
        """Run argv on the node and read its output as it comes."""

    def copy(self, node: NodeInfo, files: Mapping[str, FileCopy]) -> None:
        """Put files on the node (absolute paths; missing folders are made)."""

    def logs(self, node: NodeInfo, *, follow: bool = False,
             tail: int | None = None) -> Iterator[bytes]:
        """The node's log (its entrypoint's output): what is there, then, with follow=True,
        what comes, until the node stops."""

    def processes(self, node: NodeInfo) -> int:
        """How many processes the node runs now, as the engine counts them (never by running
        a command in the node, which a node busy with hundreds of them answers only late)."""

    def written(self, node: NodeInfo) -> int:
        """Bytes written to the node's own filesystem since it started (its writable layer):
        what a grade holds a submission's disk use to."""

    def attach(self, node: NodeInfo, argv: Sequence[str], *, tty: bool,
               env: Mapping[str, str] | None = None) -> NoReturn:
        """Replace this process with argv running on the node, attached to the terminal."""

    def terminal(self, node: NodeInfo, argv: Sequence[str], *, rows: int, cols: int,
                 env: Mapping[str, str] | None = None) -> Terminal:
        """Start argv on the node with a terminal of its own, for this process to drive (a
        page's terminal): interactive, unlike exec and stream."""

    # --- the host (portlab doctor) ---
    def facts(self) -> EngineFacts:
        """The engine's version, cgroups, address pools and networks, whether the node image
        is there, and its findings about itself (ENGINE_CHECKS). Never raises; an unreachable
        engine is a fact."""

    def probe_node(self) -> NodeProbe:
        """Start a throwaway node (no network, removed afterwards) and find out there what the
        labs' nodes will find: their iptables, the tun device, kernel WireGuard."""

    # --- errors ---
    def explain(self, exc: BaseException) -> PortlabError | None:
        """An engine error that escaped (a cut connection, say) as a PortlabError, or None."""
