"""A lab as typed data: load labs/<name>/lab.yaml, validate it, and model it.

Validation happens here, once, before anything starts: unknown keys, wrong
types, bad names, duplicate addresses, dangling references and templates that
do not render are all reported with the file, the line and the key. The
format is documented in docs/lab-format.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from portlab import allocate, templating, wgkeys
from portlab.errors import LabError, UsageError
from portlab.yamlsrc import Path as KeyPath
from portlab.yamlsrc import Source, dotted, load

NODE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
NET_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,20}[a-z0-9])?$")
IFACE_NAME = re.compile(r"^[a-z][a-z0-9]{0,14}$")
ID_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
LAB_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
RESERVED_IFACES = re.compile(r"^(lo|eth\d+|wg\d+|tun\d+|tap\d+|veth.*|docker.*|br.*)$")
DIFFICULTIES = ("beginner", "intermediate", "advanced")
# Ranges no lab network can use (interfaces there would not carry the lab's traffic).
UNUSABLE = {IPv4Network("0.0.0.0/8"): '"this network"', IPv4Network("127.0.0.0/8"): "loopback",
            IPv4Network("169.254.0.0/16"): "link-local", IPv4Network("224.0.0.0/4"): "multicast",
            IPv4Network("240.0.0.0/4"): "reserved"}


@dataclass(frozen=True)
class Network:
    name: str
    kind: str  # public | private
    prefix: int
    prefer: IPv4Network | None
    label: str
    virtual: bool  # exists only inside nodes (e.g. a VPN tunnel), no Docker network


@dataclass(frozen=True)
class Interface:
    name: str
    network: str
    host: int


@dataclass(frozen=True)
class Route:
    to: str  # "default", a CIDR, or a network name
    via: str  # "node.iface"


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

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass(frozen=True)
class Probe:
    kind: str
    source: str  # node name ("from" in the file)
    target: str | None  # "node.iface", an address, or None
    port: int | None
    options: dict[str, Any]
    expect: dict[str, Any]
    key: str  # where it was defined, for messages


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    task: str | None
    probes: tuple[Probe, ...]
    hint: str


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


@dataclass(frozen=True)
class Lab:
    name: str
    title: str
    summary: str
    difficulty: str
    concepts: tuple[str, ...]
    story: str
    access: str
    params: dict[str, Any]
    networks: tuple[Network, ...]
    nodes: tuple[Node, ...]
    tasks: tuple[Task, ...]
    checks: tuple[Check, ...]
    solution: dict[str, str]
    wrong_solutions: tuple[WrongSolution, ...]
    untouched_fails: tuple[str, ...]
    directory: Path = field(compare=False)
    file: str = field(compare=False)

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def requests(self) -> list[allocate.Request]:
        return [allocate.Request(n.name, n.kind, n.prefix, n.prefer) for n in self.networks]

    def preferred_subnets(self) -> dict[str, IPv4Network]:
        return allocate.preferred(self.requests())


# ----------------------------------------------------------------------------
# Addresses: the one place that turns (subnets, interfaces) into addresses.


def address(subnet: IPv4Network, host: int) -> ipaddress.IPv4Address:
    return subnet.network_address + host


def addresses(lab: Lab, subnets: dict[str, IPv4Network]) -> dict[str, str]:
    """Map "node.iface" to the interface's address for the given subnets."""
    out: dict[str, str] = {}
    for node in lab.nodes:
        for iface in node.interfaces:
            out[f"{node.name}.{iface.name}"] = str(address(subnets[iface.network], iface.host))
    return out


def template_context(
    lab: Lab, subnets: dict[str, IPv4Network], instance: str, token: str
) -> dict[str, Any]:
    """What every lab template sees (documented in docs/lab-format.md)."""

    def ip(network: str, host: int) -> str:
        """The address of host number `host` on `network`, e.g. ip('tunnel', 2)."""
        if network not in subnets:
            raise ValueError(f"ip(): no network called '{network}'")
        return str(address(subnets[network], int(host)))

    return {
        "lab": lab.name,
        "instance": instance,
        "token": token,
        "addr": addresses(lab, subnets),
        "subnet": {name: str(net) for name, net in subnets.items()},
        "prefix": {name: net.prefixlen for name, net in subnets.items()},
        "params": dict(lab.params),
        "ip": ip,
        **wgkeys.template_functions(token),
    }


SAMPLE_TOKEN = "0123456789abcdef"


# ----------------------------------------------------------------------------
# Finding labs.


def labs_dirs() -> list[Path]:
    """Where labs are looked up: $PORTLAB_LABS_PATH (colon-separated), then the built-in ones."""
    dirs: list[Path] = []
    extra = os.environ.get("PORTLAB_LABS_PATH", "")
    for part in extra.split(os.pathsep):
        if part:
            dirs.append(Path(part).expanduser())
    dirs.append(builtin_labs_dir())
    return dirs


def builtin_labs_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "labs"
    return packaged if packaged.is_dir() else here.parent / "labs"


def available() -> dict[str, Path]:
    """Lab name -> lab.yaml, first directory wins."""
    found: dict[str, Path] = {}
    for base in labs_dirs():
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            lab_file = child / "lab.yaml"
            if lab_file.is_file() and child.name not in found:
                found[child.name] = lab_file
    return found


def find(name: str) -> Lab:
    labs = available()
    if name not in labs:
        known = ", ".join(sorted(labs)) or "(none found)"
        raise UsageError(f"there is no lab called '{name}'. Labs: {known}",
                         hint="`portlab list` shows them with a line each")
    return load_file(labs[name])


def load_all() -> list[Lab]:
    return [load_file(path) for path in available().values()]


def load_file(path: Path) -> Lab:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(str(path), "", f"cannot read: {exc}") from None
    return parse(text, str(path), directory=path.parent)


# ----------------------------------------------------------------------------
# Validation helpers.


class _Reader:
    """Typed access to a Source with errors that name file, line and key."""

    def __init__(self, src: Source) -> None:
        self.src = src

    def error(self, path: KeyPath, message: str) -> LabError:
        return self.src.error(path, message)

    def get(self, path: KeyPath) -> Any:
        value = self.src.data
        for part in path:
            value = value[part]
        return value

    def mapping(self, value: Any, path: KeyPath, *, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping (key: value lines), got {_kind(value)}")
        for key in value:
            if key not in allowed:
                near = _closest(key, allowed)
                extra = f"; did you mean '{near}'?" if near else ""
                raise self.error(path + (key,),
                                 f"unknown key. Allowed here: {', '.join(allowed)}{extra}")
        for key in required:
            if key not in value:
                raise self.error(path, f"missing required key '{key}'")
        return value

    def text(self, value: Any, path: KeyPath, *, optional: bool = False, default: str = "",
             pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        if value is None and optional:
            return default
        if not isinstance(value, str):
            raise self.error(path, f"expected text, got {_kind(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(path, f"'{value}' is not a valid {what or 'name'}")
        return value

    def integer(self, value: Any, path: KeyPath, *, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected a whole number, got {_kind(value)}")
        if not low <= value <= high:
            raise self.error(path, f"expected a number from {low} to {high}, got {value}")
        return value

    def boolean(self, value: Any, path: KeyPath, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_kind(value)}")
        return value

    def seq(self, value: Any, path: KeyPath, *, optional: bool = True) -> list[Any]:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, got {_kind(value)}")
        return value

    def names(self, value: Any, path: KeyPath, pattern: re.Pattern[str],
              what: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.error(path, f"expected a mapping of {what} names to their settings")
        for key in value:
            if not pattern.fullmatch(key):
                raise self.error(path + (key,), f"'{key}' is not a valid {what} name "
                                 f"(lowercase letters, digits and '-', starting with a letter)")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text '{value[:40]}'"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return type(value).__name__


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, options, n=1, cutoff=0.7)
    return match[0] if match else None


# ----------------------------------------------------------------------------
# The parser.

TOP_KEYS = ("name", "title", "summary", "difficulty", "concepts", "story", "access", "params",
            "networks", "nodes", "tasks", "checks", "solution", "wrong_solutions", "untouched")
NETWORK_KEYS = ("kind", "prefix", "prefer", "label", "virtual")
NODE_KEYS = ("role", "interfaces", "routes", "forwarding", "vpn", "setup", "files", "services")
IFACE_KEYS = ("network", "host")
ROUTE_KEYS = ("to", "via")
SERVICE_KEYS = ("name", "run", "ready")
READY_KEYS = ("tcp", "udp")
TASK_KEYS = ("id", "title", "text", "stretch")
CHECK_KEYS = ("id", "title", "task", "probes", "hint")
PROBE_BASE_KEYS = ("kind", "from", "to", "port", "expect")
WRONG_KEYS = ("name", "description", "apply", "fails")
UNTOUCHED_KEYS = ("fails",)


def parse(text: str, file: str, directory: Path | None = None) -> Lab:
    src = load(text, file)
    r = _Reader(src)
    top = r.mapping(src.data, (), allowed=TOP_KEYS,
                    required=("name", "title", "summary", "networks", "nodes", "checks"))
    name = r.text(top["name"], ("name",), pattern=LAB_NAME, what="lab name")
    if directory is not None and directory.name != name:
        raise r.error(("name",), f"must match the lab's folder name '{directory.name}'")
    difficulty = r.text(top.get("difficulty"), ("difficulty",), optional=True, default="beginner")
    if difficulty not in DIFFICULTIES:
        raise r.error(("difficulty",), f"expected one of {', '.join(DIFFICULTIES)}")
    concepts = tuple(r.text(c, ("concepts", i)) for i, c in
                     enumerate(r.seq(top.get("concepts"), ("concepts",))))
    params = top.get("params") or {}
    if not isinstance(params, dict):
        raise r.error(("params",), "expected a mapping of parameter names to values")
    for key, value in params.items():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise r.error(("params", key), "parameter names use lowercase letters, digits and _")
        if not isinstance(value, (str, int, float, bool)):
            raise r.error(("params", key), f"expected text or a number, got {_kind(value)}")

    networks = _networks(r, top["networks"])
    nodes = _nodes(r, top["nodes"], networks)
    tasks = _tasks(r, top.get("tasks"))
    checks = _checks(r, top["checks"], nodes, tasks)
    solution = _scripts(r, top.get("solution"), ("solution",), nodes)
    wrong = _wrong(r, top.get("wrong_solutions"), nodes, checks)
    untouched: tuple[str, ...] = ()
    if top.get("untouched") is not None:
        u = r.mapping(top["untouched"], ("untouched",), allowed=UNTOUCHED_KEYS, required=("fails",))
        untouched = _check_ids(r, u["fails"], ("untouched", "fails"), checks)

    lab = Lab(
        name=name,
        title=r.text(top["title"], ("title",)),
        summary=r.text(top["summary"], ("summary",)),
        difficulty=difficulty,
        concepts=concepts,
        story=r.text(top.get("story"), ("story",), optional=True),
        access=r.text(top.get("access"), ("access",), optional=True),
        params=params,
        networks=networks,
        nodes=nodes,
        tasks=tasks,
        checks=checks,
        solution=solution,
        wrong_solutions=wrong,
        untouched_fails=untouched,
        directory=directory or Path(file).parent,
        file=file,
    )
    _check_templates(r, lab)
    return lab


def _networks(r: _Reader, value: Any) -> tuple[Network, ...]:
    raw = r.names(value, ("networks",), NET_NAME, "network")
    out = []
    for name, spec in raw.items():
        path: KeyPath = ("networks", name)
        spec = r.mapping(spec if spec is not None else {}, path, allowed=NETWORK_KEYS,
                         required=("kind",))
        kind = r.text(spec["kind"], path + ("kind",))
        if kind not in ("public", "private"):
            raise r.error(path + ("kind",), "expected 'public' (the internet) or 'private' (a LAN)")
        prefix = r.integer(spec.get("prefix", 24), path + ("prefix",), low=16, high=28)
        prefer = None
        if spec.get("prefer") is not None:
            try:
                prefer = IPv4Network(r.text(spec["prefer"], path + ("prefer",)))
            except ValueError as exc:
                raise r.error(path + ("prefer",), f"not an IPv4 subnet: {exc}") from None
            if prefer.prefixlen != prefix:
                raise r.error(path + ("prefer",), f"must be a /{prefix} (the network's prefix)")
            if any(prefer.overlaps(p) for p in allocate.DOCKER_DEFAULT_POOLS):
                raise r.error(path + ("prefer",), "lies in Docker's default address pools "
                              "(172.16.0.0/12, 192.168.0.0/16), where Docker's own NAT rules "
                              "would change the lab; pick another range")
            for bad, what in UNUSABLE.items():
                if prefer.overlaps(bad):
                    raise r.error(path + ("prefer",), f"overlaps {bad} ({what}), which no "
                                  "network can use; pick another range")
        out.append(Network(
            name=name, kind=kind, prefix=prefix, prefer=prefer,
            label=r.text(spec.get("label"), path + ("label",), optional=True, default=name),
            virtual=r.boolean(spec.get("virtual"), path + ("virtual",)),
        ))
    prefs = [(n.name, n.prefer) for n in out if n.prefer is not None]
    for i, (a_name, a) in enumerate(prefs):
        for b_name, b in prefs[i + 1:]:
            if a is not None and b is not None and a.overlaps(b):
                raise r.error(("networks", b_name, "prefer"),
                              f"overlaps network '{a_name}' ({a})")
    return tuple(out)


def _nodes(r: _Reader, value: Any, networks: tuple[Network, ...]) -> tuple[Node, ...]:
    raw = r.names(value, ("nodes",), NODE_NAME, "node")
    nets = {n.name: n for n in networks}
    used: dict[tuple[str, int], str] = {}
    out = []
    for name, spec in raw.items():
        path: KeyPath = ("nodes", name)
        spec = r.mapping(spec if spec is not None else {}, path, allowed=NODE_KEYS,
                         required=("interfaces",))
        ifaces = []
        raw_ifaces = r.names(spec["interfaces"], path + ("interfaces",), IFACE_NAME, "interface")
        seen_nets: dict[str, str] = {}
        for iname, ispec in raw_ifaces.items():
            ipath = path + ("interfaces", iname)
            if RESERVED_IFACES.match(iname):
                raise r.error(ipath, f"'{iname}' is reserved (Docker's or the kernel's own "
                              "names); pick a name that says what the link is, like wan or lan")
            ispec = r.mapping(ispec, ipath, allowed=IFACE_KEYS, required=("network", "host"))
            net_name = r.text(ispec["network"], ipath + ("network",))
            if net_name not in nets:
                raise r.error(ipath + ("network",),
                              f"no network called '{net_name}'. Networks: {', '.join(nets)}")
            net = nets[net_name]
            if net.virtual:
                raise r.error(ipath + ("network",), f"'{net_name}' is virtual (it exists only "
                              "inside nodes, like a VPN tunnel); nodes cannot be wired to it")
            if net_name in seen_nets:
                raise r.error(ipath + ("network",), f"node already has interface "
                              f"'{seen_nets[net_name]}' on network '{net_name}'")
            seen_nets[net_name] = iname
            size = 2 ** (32 - net.prefix)
            host = r.integer(ispec["host"], ipath + ("host",), low=1, high=size - 3)
            if (net_name, host) in used:
                raise r.error(ipath + ("host",), f"address .{host} on '{net_name}' is already "
                              f"used by {used[(net_name, host)]}")
            used[(net_name, host)] = f"{name}.{iname}"
            ifaces.append(Interface(iname, net_name, host))
        services = []
        for i, sspec in enumerate(r.seq(spec.get("services"), path + ("services",))):
            spath = path + ("services", i)
            sspec = r.mapping(sspec, spath, allowed=SERVICE_KEYS, required=("name", "run"))
            ready = r.mapping(sspec.get("ready") or {}, spath + ("ready",), allowed=READY_KEYS)
            services.append(Service(
                name=r.text(sspec["name"], spath + ("name",), pattern=ID_NAME, what="service name"),
                run=r.text(sspec["run"], spath + ("run",)),
                ready_tcp=(r.integer(ready["tcp"], spath + ("ready", "tcp"), low=1, high=65535)
                           if "tcp" in ready else None),
                ready_udp=(r.integer(ready["udp"], spath + ("ready", "udp"), low=1, high=65535)
                           if "udp" in ready else None),
            ))
        files = spec.get("files") or {}
        if not isinstance(files, dict):
            raise r.error(path + ("files",), "expected a mapping of absolute paths to contents")
        for fpath, content in files.items():
            if not fpath.startswith("/") or ".." in fpath.split("/"):
                raise r.error(path + ("files", fpath), "must be an absolute path without '..'")
            r.text(content, path + ("files", fpath))
        out.append(Node(
            name=name,
            role=r.text(spec.get("role"), path + ("role",), optional=True),
            interfaces=tuple(ifaces),
            routes=(),  # filled below, once all nodes are known
            forwarding=r.boolean(spec.get("forwarding"), path + ("forwarding",)),
            vpn=r.boolean(spec.get("vpn"), path + ("vpn",)),
            setup=r.text(spec.get("setup"), path + ("setup",), optional=True),
            files=dict(files),
            services=tuple(services),
        ))
    by_name = {n.name: n for n in out}
    final = []
    for node in out:
        path = ("nodes", node.name)
        routes = []
        for i, rspec in enumerate(r.seq(raw[node.name].get("routes"), path + ("routes",))):
            rpath = path + ("routes", i)
            rspec = r.mapping(rspec, rpath, allowed=ROUTE_KEYS, required=("to", "via"))
            to = r.text(rspec["to"], rpath + ("to",))
            if to != "default" and to not in nets:
                try:
                    IPv4Network(to)
                except ValueError:
                    raise r.error(rpath + ("to",), "expected 'default', a network name or an "
                                  "IPv4 subnet like 10.0.0.0/24") from None
            via = r.text(rspec["via"], rpath + ("via",))
            gw_node, _, gw_iface = via.partition(".")
            gw = by_name.get(gw_node)
            gw_if = gw.interface(gw_iface) if gw else None
            if gw is None or gw_if is None:
                raise r.error(rpath + ("via",), f"'{via}' is not a node.interface of this lab "
                              "(like router.lan)")
            if gw_if.network not in {i.network for i in node.interfaces}:
                raise r.error(rpath + ("via",), f"'{via}' is on network '{gw_if.network}', "
                              f"which {node.name} is not attached to")
            routes.append(Route(to, via))
        final.append(Node(**{**node.__dict__, "routes": tuple(routes)}))
    return tuple(final)


def _tasks(r: _Reader, value: Any) -> tuple[Task, ...]:
    out = []
    ids: set[str] = set()
    for i, spec in enumerate(r.seq(value, ("tasks",))):
        path: KeyPath = ("tasks", i)
        spec = r.mapping(spec, path, allowed=TASK_KEYS, required=("id", "title", "text"))
        tid = r.text(spec["id"], path + ("id",), pattern=ID_NAME, what="task id")
        if tid in ids:
            raise r.error(path + ("id",), f"task id '{tid}' is used twice")
        ids.add(tid)
        out.append(Task(tid, r.text(spec["title"], path + ("title",)),
                        r.text(spec["text"], path + ("text",)),
                        r.boolean(spec.get("stretch"), path + ("stretch",))))
    return tuple(out)


def _checks(r: _Reader, value: Any, nodes: tuple[Node, ...],
            tasks: tuple[Task, ...]) -> tuple[Check, ...]:
    from portlab import checks as probes_registry

    out = []
    ids: set[str] = set()
    node_names = {n.name for n in nodes}
    task_ids = {t.id for t in tasks}
    items = r.seq(value, ("checks",), optional=False)
    if not items:
        raise r.error(("checks",), "a lab needs at least one check")
    for i, spec in enumerate(items):
        path: KeyPath = ("checks", i)
        spec = r.mapping(spec, path, allowed=CHECK_KEYS, required=("id", "title", "probes"))
        cid = r.text(spec["id"], path + ("id",), pattern=ID_NAME, what="check id")
        if cid in ids:
            raise r.error(path + ("id",), f"check id '{cid}' is used twice")
        ids.add(cid)
        task = r.text(spec.get("task"), path + ("task",), optional=True) or None
        if task is not None and task not in task_ids:
            raise r.error(path + ("task",), f"no task with id '{task}'")
        probes = []
        raw_probes = r.seq(spec["probes"], path + ("probes",), optional=False)
        if not raw_probes:
            raise r.error(path + ("probes",), "a check needs at least one probe")
        for j, pspec in enumerate(raw_probes):
            ppath = path + ("probes", j)
            if not isinstance(pspec, dict):
                raise r.error(ppath, f"expected a mapping, got {_kind(pspec)}")
            kind = r.text(pspec.get("kind"), ppath + ("kind",))
            spec_of = probes_registry.spec(kind)
            if spec_of is None:
                raise r.error(ppath + ("kind",), f"unknown probe kind '{kind}'. Kinds: "
                              f"{', '.join(probes_registry.kinds())}")
            allowed = PROBE_BASE_KEYS + tuple(spec_of.options)
            r.mapping(pspec, ppath, allowed=allowed, required=("kind", "from"))
            source = r.text(pspec["from"], ppath + ("from",))
            if source not in node_names:
                raise r.error(ppath + ("from",), f"no node called '{source}'")
            target = pspec.get("to")
            if target is not None:
                target = r.text(target, ppath + ("to",))
                _check_target(r, target, ppath + ("to",), nodes)
            elif spec_of.needs_target:
                raise r.error(ppath, "missing required key 'to'")
            port = pspec.get("port")
            if port is not None:
                port = r.integer(port, ppath + ("port",), low=1, high=65535)
            elif spec_of.needs_port:
                raise r.error(ppath, "missing required key 'port'")
            options = {}
            for key, typ in spec_of.options.items():
                if key in pspec:
                    options[key] = _typed(r, pspec[key], ppath + (key,), typ)
            expect_raw = pspec.get("expect") or {}
            expect_raw = r.mapping(expect_raw, ppath + ("expect",), allowed=tuple(spec_of.expects))
            expect = {k: _typed(r, v, ppath + ("expect", k), spec_of.expects[k])
                      for k, v in expect_raw.items()}
            for key in ("seen_source", "peer", "tunnel"):
                if isinstance(expect.get(key), str):
                    _check_target(r, expect[key], ppath + ("expect", key), nodes)
            at = options.get("at")  # a node the probe also runs something on (capture)
            if isinstance(at, str) and "{{" not in at and at not in node_names:
                raise r.error(ppath + ("at",), f"no node called '{at}'")
            problem = spec_of.validate(options, expect) if spec_of.validate else None
            if problem:
                raise r.error(ppath, problem)
            probes.append(Probe(kind, source, target, port, options, expect, dotted(ppath)))
        out.append(Check(cid, r.text(spec["title"], path + ("title",)), task, tuple(probes),
                         r.text(spec.get("hint"), path + ("hint",), optional=True)))
    return tuple(out)


def _typed(r: _Reader, value: Any, path: KeyPath, typ: Any) -> Any:
    if typ is bool:
        return r.boolean(value, path)
    if typ is int:
        return r.integer(value, path, low=0, high=10**6)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise r.error(path, f"expected a number, got {_kind(value)}")
        if not 0 < value <= 60:
            raise r.error(path, "expected a number of seconds from 0 to 60")
        return float(value)
    if typ is str:
        return r.text(value, path)
    if isinstance(typ, tuple):  # a choice
        text = r.text(value, path)
        if text not in typ:
            raise r.error(path, f"expected one of: {', '.join(typ)}")
        return text
    if typ is list:
        items = r.seq(value, path, optional=False)
        return [r.text(v, path + (k,)) for k, v in enumerate(items)]
    raise AssertionError(typ)


def _check_target(r: _Reader, target: str, path: KeyPath, nodes: tuple[Node, ...]) -> None:
    if "{{" in target:
        return  # rendered later; checked by _check_templates
    try:
        ipaddress.IPv4Address(target)
        return
    except ValueError:
        pass
    node_name, _, iface = target.partition(".")
    node = next((n for n in nodes if n.name == node_name), None)
    if node is None or not iface or node.interface(iface) is None:
        raise r.error(path, f"'{target}' is not a node.interface of this lab (like router.wan) "
                      "or an IPv4 address")


def _check_ids(r: _Reader, value: Any, path: KeyPath, checks: tuple[Check, ...]) -> tuple[str, ...]:
    ids = {c.id for c in checks}
    out = []
    for i, cid in enumerate(r.seq(value, path, optional=False)):
        text = r.text(cid, path + (i,))
        if text not in ids:
            raise r.error(path + (i,), f"no check with id '{text}'")
        out.append(text)
    return tuple(out)


def _scripts(r: _Reader, value: Any, path: KeyPath, nodes: tuple[Node, ...]) -> dict[str, str]:
    if value is None:
        return {}
    raw = r.mapping(value, path, allowed=tuple(n.name for n in nodes))
    return {node: r.text(script, path + (node,)) for node, script in raw.items()}


def _wrong(r: _Reader, value: Any, nodes: tuple[Node, ...],
           checks: tuple[Check, ...]) -> tuple[WrongSolution, ...]:
    out = []
    names: set[str] = set()
    for i, spec in enumerate(r.seq(value, ("wrong_solutions",))):
        path: KeyPath = ("wrong_solutions", i)
        spec = r.mapping(spec, path, allowed=WRONG_KEYS, required=("name", "apply", "fails"))
        name = r.text(spec["name"], path + ("name",), pattern=ID_NAME, what="wrong-solution name")
        if name in names:
            raise r.error(path + ("name",), f"'{name}' is used twice")
        names.add(name)
        out.append(WrongSolution(
            name=name,
            description=r.text(spec.get("description"), path + ("description",), optional=True),
            apply=_scripts(r, spec["apply"], path + ("apply",), nodes),
            fails=_check_ids(r, spec["fails"], path + ("fails",), checks),
        ))
    return tuple(out)


def template_fields(lab: Lab) -> Iterator[tuple[KeyPath, str]]:
    """Every text of a lab that is a Jinja2 template, with its key path."""
    yield ("story",), lab.story
    yield ("access",), lab.access
    for i, task in enumerate(lab.tasks):
        yield ("tasks", i, "title"), task.title
        yield ("tasks", i, "text"), task.text
    for node in lab.nodes:
        base: KeyPath = ("nodes", node.name)
        yield base + ("setup",), node.setup
        for fpath, content in node.files.items():
            yield base + ("files", fpath), content
        for j, svc in enumerate(node.services):
            yield base + ("services", j, "run"), svc.run
    for i, check in enumerate(lab.checks):
        yield ("checks", i, "title"), check.title
        yield ("checks", i, "hint"), check.hint
        for j, probe in enumerate(check.probes):
            if probe.target:
                yield ("checks", i, "probes", j, "to"), probe.target
            for key, value in probe.options.items():
                if isinstance(value, str):
                    yield ("checks", i, "probes", j, key), value
            for key, value in probe.expect.items():
                if isinstance(value, str):
                    yield ("checks", i, "probes", j, "expect", key), value
    for node_name, script in lab.solution.items():
        yield ("solution", node_name), script
    for i, wrong in enumerate(lab.wrong_solutions):
        for node_name, script in wrong.apply.items():
            yield ("wrong_solutions", i, "apply", node_name), script


def render_text(lab: Lab, path: KeyPath | str, text: str, context: dict[str, Any]) -> str:
    """One of the lab's templates, rendered. Loading tried each with a sample instance, yet a
    template can depend on the instance or token: a failure here is a LabError too, naming
    the key (`path`, or already dotted)."""
    try:
        return templating.render(text, context)
    except Exception as exc:
        key = path if isinstance(path, str) else dotted(path)
        raise LabError(lab.file, key, templating.describe(exc)) from None


def _check_templates(r: _Reader, lab: Lab) -> None:
    try:
        subnets = lab.preferred_subnets()
    except allocate.AllocationError as exc:
        raise r.error(("networks",), str(exc)) from None
    context = template_context(lab, subnets, lab.name, SAMPLE_TOKEN)
    for path, text in template_fields(lab):
        if not text:
            continue
        problem = templating.problem(text, context)
        if problem:
            raise r.error(path, problem)

