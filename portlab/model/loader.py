"""Load labs/<name>/lab.yaml into a typed Lab, validating everything before anything starts.

Unknown keys, wrong types, bad names, duplicate addresses, dangling
references, interfaces a node does not have and templates that do not render
are all reported with the file, the line and the key. Numbers may be
templates over the lab's params; they are rendered and validated here. The
format is documented in docs/lab-format.md; the checks' part is in
`portlab.model.checkspec`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from portlab.errors import LabError
from portlab.model import allocate, checkspec, context, demospec, gradespec, params
from portlab.model.reader import Reader
from portlab.model.types import (
    DIFFICULTIES,
    Check,
    Interface,
    Lab,
    Network,
    Node,
    Route,
    Service,
    Task,
    WrongSolution,
)
from portlab.model.yamlsrc import Path as KeyPath
from portlab.model.yamlsrc import load

NODE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
NET_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,20}[a-z0-9])?$")
IFACE_NAME = re.compile(r"^[a-z][a-z0-9]{0,14}$")
ID_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
LAB_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
RESERVED_IFACES = re.compile(r"^(lo|eth\d+|wg\d+|tun\d+|tap\d+|veth.*|docker.*|br.*)$")
# Ranges no lab network can use (interfaces there would not carry the lab's traffic).
UNUSABLE = {IPv4Network("0.0.0.0/8"): '"this network"', IPv4Network("127.0.0.0/8"): "loopback",
            IPv4Network("169.254.0.0/16"): "link-local", IPv4Network("224.0.0.0/4"): "multicast",
            IPv4Network("240.0.0.0/4"): "reserved"}

TOP_KEYS = ("name", "title", "summary", "difficulty", "concepts", "story", "access", "params",
            "networks", "nodes", "tasks", "checks", "solution", "wrong_solutions", "untouched",
            "submission", "points", "pass_mark", "vary", "demo", "order", "hidden_params",
            "survives", "trace")
NETWORK_KEYS = ("kind", "prefix", "prefer", "label", "virtual", "ipv6", "prefer6")
NODE_KEYS = ("role", "interfaces", "routes", "forwarding", "vpn", "setup", "files", "services",
             "after")
IFACE_KEYS = ("network", "host")
ROUTE_KEYS = ("to", "via", "ipv6")
SERVICE_KEYS = ("name", "run", "ready")
READY_KEYS = ("tcp", "udp")
TASK_KEYS = ("id", "title", "text", "stretch")
WRONG_KEYS = ("name", "description", "apply", "fails", "says")
UNTOUCHED_KEYS = ("fails",)


def parse(text: str, file: str, directory: Path | None = None,
          overrides: Mapping[str, Any] | None = None, *, strict: bool = True) -> Lab:
    """The lab in `text` (read from `file`), with its params set to `overrides` where given
    (see portlab.model.params.apply for `strict`)."""
    src = load(text, file)
    r = Reader(src)
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
    defaults = params.read(r, top.get("params"))
    applied = params.apply(name, defaults, overrides or {}, strict=strict)
    r = Reader(src, applied, {k: v for k, v in applied.items() if defaults[k] != v})

    networks = _networks(r, top["networks"])
    nodes = _nodes(r, top["nodes"], networks)
    tasks = _tasks(r, top.get("tasks"))
    checks = checkspec.read(r, top["checks"], nodes, {t.id for t in tasks},
                            {t.id for t in tasks if t.stretch})
    solution = _scripts(r, top.get("solution"), ("solution",), nodes)
    wrong = _wrong(r, top.get("wrong_solutions"), nodes, checks)
    untouched: tuple[str, ...] = ()
    if top.get("untouched") is not None:
        u = r.mapping(top["untouched"], ("untouched",), allowed=UNTOUCHED_KEYS, required=("fails",))
        untouched = checkspec.check_ids(r, u["fails"], ("untouched", "fails"), checks)

    points = gradespec.points(r, top.get("points"), checks)
    lab = Lab(
        name=name,
        title=r.text(top["title"], ("title",)),
        summary=r.text(top["summary"], ("summary",)),
        difficulty=difficulty,
        concepts=concepts,
        story=r.text(top.get("story"), ("story",), optional=True),
        access=r.text(top.get("access"), ("access",), optional=True),
        params=applied,
        networks=networks,
        nodes=nodes,
        tasks=tasks,
        checks=checks,
        solution=solution,
        wrong_solutions=wrong,
        untouched_fails=untouched,
        directory=directory or Path(file).parent,
        file=file,
        defaults=defaults,
        lines=dict(src.lines),
        submission=gradespec.submission(r, top.get("submission"), nodes, solution),
        points=points,
        pass_mark=gradespec.pass_mark(r, top.get("pass_mark"), sum(points.values())),
        vary=gradespec.vary(r, top.get("vary"), defaults, networks),
        demo=demospec.read(r, top.get("demo"), nodes, solution),
        order=(1000 if top.get("order") is None else
               r.integer(top["order"], ("order",), low=0, high=1000)),
        hidden_params=_hidden(r, top.get("hidden_params"), defaults),
        survives=_survives(r, top.get("survives")),
        trace_filter=_trace(r, top.get("trace")),
    )
    try:
        sample = context.Binding.sample(lab)
    except allocate.AllocationError as exc:
        raise r.error(("networks",), str(exc)) from None
    problem = sample.first_problem()
    if problem is not None:
        raise r.error(*problem)
    return lab


def load_file(path: Path, overrides: Mapping[str, Any] | None = None, *,
              strict: bool = True) -> Lab:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(str(path), "", f"cannot read: {exc}") from None
    return parse(text, str(path), directory=path.parent, overrides=overrides, strict=strict)


def _networks(r: Reader, value: Any) -> tuple[Network, ...]:
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
        virtual = r.boolean(spec.get("virtual"), path + ("virtual",))
        ipv6 = r.boolean(spec.get("ipv6"), path + ("ipv6",))
        if ipv6 and virtual:
            raise r.error(path + ("ipv6",), "a virtual network (a tunnel made inside nodes) "
                          "cannot be an IPv6 network; only networks of containers can")
        out.append(Network(
            name=name, kind=kind, prefix=prefix, prefer=prefer,
            label=r.text(spec.get("label"), path + ("label",), optional=True, default=name),
            virtual=virtual, ipv6=ipv6, prefer6=_prefer6(r, spec, path, ipv6, prefer),
        ))
    for key in ("prefer", "prefer6"):
        prefs = [(n.name, getattr(n, key)) for n in out if getattr(n, key) is not None]
        for i, (a_name, a) in enumerate(prefs):
            for b_name, b in prefs[i + 1:]:
                if a.overlaps(b):
                    raise r.error(("networks", b_name, key), f"overlaps network '{a_name}' ({a})")
    return tuple(out)


def _prefer6(r: Reader, spec: dict[str, Any], path: KeyPath, ipv6: bool,
             prefer: IPv4Network | None) -> IPv6Network | None:
    """`prefer6`: the IPv6 /64 a first instance of the lab gets (one of 2001:db8:1::/64 up to
    2001:db8:ff::/64), beside its preferred IPv4 subnet."""
    if spec.get("prefer6") is None:
        return None
    where = path + ("prefer6",)
    if not ipv6:
        raise r.error(where, "only an IPv6 network has one: add `ipv6: true`")
    if prefer is None:
        raise r.error(where, "goes with `prefer`: the /64 is the first instance's, and the "
                      "first instance is the one that gets the preferred IPv4 subnet")
    try:
        net = IPv6Network(r.text(spec["prefer6"], where))
    except ValueError as exc:
        raise r.error(where, f"not an IPv6 subnet: {exc}") from None
    if net.prefixlen != 64 or not net.subnet_of(allocate.PREFER6_BLOCK) or \
            net.network_address == allocate.PREFER6_BLOCK.network_address:
        raise r.error(where, "expected a /64 from 2001:db8:1::/64 to 2001:db8:ff::/64 (the "
                      "documentation prefix; the other /64s are handed to further instances)")
    return net


def _nodes(r: Reader, value: Any, networks: tuple[Network, ...]) -> tuple[Node, ...]:
    """The nodes: each read on its own, then their routes and start order, which name other
    nodes."""
    raw = r.names(value, ("nodes",), NODE_NAME, "node")
    nets = {n.name: n for n in networks}
    used: dict[tuple[str, int], str] = {}  # (network, host number) -> "node.iface"
    out = []
    for name, spec in raw.items():
        path: KeyPath = ("nodes", name)
        spec = r.mapping(spec if spec is not None else {}, path, allowed=NODE_KEYS,
                         required=("interfaces",))
        out.append(Node(
            name=name,
            role=r.text(spec.get("role"), path + ("role",), optional=True),
            interfaces=_interfaces(r, spec["interfaces"], path, nets, used),
            routes=(),  # filled below, once all nodes are known
            forwarding=r.boolean(spec.get("forwarding"), path + ("forwarding",)),
            vpn=r.boolean(spec.get("vpn"), path + ("vpn",)),
            setup=r.text(spec.get("setup"), path + ("setup",), optional=True),
            files=_files(r, spec.get("files"), path),
            services=_services(r, spec.get("services"), path),
        ))
    by_name = {n.name: n for n in out}
    final = []
    for node in out:
        path = ("nodes", node.name)
        final.append(Node(**{**node.__dict__,
                             "routes": _routes(r, raw[node.name].get("routes"), path, node,
                                               nets, by_name),
                             "after": _after(r, raw[node.name].get("after"), path, node.name,
                                             by_name)}))
    _no_cycle(r, {n.name: n.after for n in final})
    return tuple(final)


def _interfaces(r: Reader, value: Any, path: KeyPath, nets: dict[str, Network],
                used: dict[tuple[str, int], str]) -> tuple[Interface, ...]:
    """A node's interfaces: each on a real network of the lab, at a host number no other
    interface there has (`used`, shared by all nodes)."""
    ifaces = []
    raw_ifaces = r.names(value, path + ("interfaces",), IFACE_NAME, "interface")
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
        used[(net_name, host)] = f"{path[-1]}.{iname}"
        ifaces.append(Interface(iname, net_name, host, ipv6=net.ipv6))
    return tuple(ifaces)


def _services(r: Reader, value: Any, path: KeyPath) -> tuple[Service, ...]:
    services = []
    for i, sspec in enumerate(r.seq(value, path + ("services",))):
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
    return tuple(services)


def _files(r: Reader, value: Any, path: KeyPath) -> dict[str, str]:
    files = value or {}
    if not isinstance(files, dict):
        raise r.error(path + ("files",), "expected a mapping of absolute paths to contents")
    for fpath, content in files.items():
        if not fpath.startswith("/") or ".." in fpath.split("/"):
            raise r.error(path + ("files", fpath), "must be an absolute path without '..'")
        r.text(content, path + ("files", fpath))
    return dict(files)


def _routes(r: Reader, value: Any, path: KeyPath, node: Node, nets: dict[str, Network],
            by_name: dict[str, Node]) -> tuple[Route, ...]:
    """A node's static routes: to a network of the lab, a subnet or the default, via a
    gateway interface on a network the node is attached to."""
    routes = []
    for i, rspec in enumerate(r.seq(value, path + ("routes",))):
        rpath = path + ("routes", i)
        rspec = r.mapping(rspec, rpath, allowed=ROUTE_KEYS, required=("to", "via"))
        to = r.text(rspec["to"], rpath + ("to",))
        v6 = r.boolean(rspec.get("ipv6"), rpath + ("ipv6",))
        family, example = ("IPv6", "2001:db8:1::/64") if v6 else ("IPv4", "10.0.0.0/24")
        if to != "default" and to not in nets:
            try:
                (IPv6Network if v6 else IPv4Network)(to)
            except ValueError:
                raise r.error(rpath + ("to",), "expected 'default', a network name or an "
                              f"{family} subnet like {example}") from None
        elif v6 and to in nets and not nets[to].ipv6:
            raise r.error(rpath + ("to",), f"network '{to}' has no IPv6 (add `ipv6: true` "
                          "to it)")
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
        if v6 and not gw_if.ipv6:
            raise r.error(rpath + ("via",), f"'{via}' has no IPv6 address: its network "
                          f"'{gw_if.network}' is not an IPv6 network")
        routes.append(Route(to, via, ipv6=v6))
    return tuple(routes)


def _after(r: Reader, value: Any, path: KeyPath, name: str, nodes: dict[str, Node]
           ) -> tuple[str, ...]:
    """`after: [node, ...]`: the nodes whose readiness this node's setup waits for."""
    out: list[str] = []
    for i, item in enumerate(r.seq(value, path + ("after",))):
        other = r.text(item, path + ("after", i))
        if other not in nodes:
            raise r.error(path + ("after", i), f"no node called '{other}'. Nodes: "
                          f"{', '.join(nodes)}")
        if other == name:
            raise r.error(path + ("after", i), "a node cannot start after itself")
        if other not in out:
            out.append(other)
    return tuple(out)


def _no_cycle(r: Reader, after: dict[str, tuple[str, ...]]) -> None:
    """Nodes that wait for each other, in a ring, would never start: refuse the lab."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in after[node]:
            if state.get(other) == 1:
                ring = trail[trail.index(other):] + [node, other]  # other is on the trail
                raise r.error(("nodes", node, "after"), "nodes that start after each other "
                              f"never start: {' -> '.join(ring)}")
            if other not in state:
                visit(other, trail + [node])
        state[node] = 2

    for node in after:
        if node not in state:
            visit(node, [])


MUTANT_NAME = re.compile(r"^[a-z][a-z0-9-]*@[a-z0-9][a-z0-9_./:-]*$")


def _survives(r: Reader, value: Any) -> dict[str, str]:
    """Mutants of `portlab test` the lab declares to survive its checks, and why (the names
    are the battery's: portlab.mutants; `portlab test` says if one names no mutant)."""
    if value is None:
        return {}
    out = {}
    for name, reason in r.mapping(value, ("survives",), allowed=tuple(value)).items():
        key = r.text(name, ("survives",), pattern=MUTANT_NAME, what="mutant name "
                     "(like forward-open@router)")
        text = r.text(reason, ("survives", name)).strip()
        if not text:
            raise r.error(("survives", name), "say why this mutant survives")
        out[key] = text
    return out


def _hidden(r: Reader, value: Any, defaults: dict[str, Any]) -> tuple[str, ...]:
    """Params the learner is to find out (a mystery port): the brief does not print them."""
    out = []
    for i, item in enumerate(r.seq(value, ("hidden_params",))):
        name = r.text(item, ("hidden_params", i))
        if name not in defaults:
            raise r.error(("hidden_params", i), f"no param called '{name}'. Params: "
                          f"{', '.join(defaults) or '(none)'}")
        out.append(name)
    return tuple(out)


def _tasks(r: Reader, value: Any) -> tuple[Task, ...]:
    out = []
    ids: set[str] = set()
    for i, spec in enumerate(r.seq(value, ("tasks",))):
        path: KeyPath = ("tasks", i)
        spec = r.mapping(spec, path, allowed=TASK_KEYS, required=("id", "title", "text"))
        tid = r.unique(r.text(spec["id"], path + ("id",), pattern=ID_NAME, what="task id"),
                       path + ("id",), ids, "task id")
        out.append(Task(tid, r.text(spec["title"], path + ("title",)),
                        r.text(spec["text"], path + ("text",)),
                        r.boolean(spec.get("stretch"), path + ("stretch",))))
    return tuple(out)


def _scripts(r: Reader, value: Any, path: KeyPath, nodes: tuple[Node, ...]) -> dict[str, str]:
    if value is None:
        return {}
    raw = r.mapping(value, path, allowed=tuple(n.name for n in nodes))
    return {node: r.text(script, path + (node,)) for node, script in raw.items()}


def _trace(r: Reader, value: Any) -> str:
    """`trace: {filter: EXPR}`: what `portlab trace` shows by default (a tcpdump expression, a
    template): the traffic the lab's task is about, so that its NAT lines stay on screen."""
    if value is None:
        return ""
    spec = r.mapping(value, ("trace",), allowed=("filter",), required=("filter",))
    return r.text(spec["filter"], ("trace", "filter"))


def _says(r: Reader, value: Any, path: KeyPath, fails: Any) -> dict[str, str]:
    """`says: {CHECK: words}`: for a check the wrong solution fails, words its feedback holds."""
    if value is None:
        return {}
    spec = r.mapping(value, path, allowed=tuple(fails) if isinstance(fails, list) else ())
    return {str(k): r.text(v, path + (k,)) for k, v in spec.items()}


def _wrong(r: Reader, value: Any, nodes: tuple[Node, ...],
           checks: tuple[Check, ...]) -> tuple[WrongSolution, ...]:
    out = []
    names: set[str] = set()
    for i, spec in enumerate(r.seq(value, ("wrong_solutions",))):
        path: KeyPath = ("wrong_solutions", i)
        spec = r.mapping(spec, path, allowed=WRONG_KEYS, required=("name", "apply", "fails"))
        name = r.unique(r.text(spec["name"], path + ("name",), pattern=ID_NAME,
                               what="wrong-solution name"), path + ("name",), names)
        out.append(WrongSolution(
            name=name,
            description=r.text(spec.get("description"), path + ("description",), optional=True),
            apply=_scripts(r, spec["apply"], path + ("apply",), nodes),
            fails=checkspec.check_ids(r, spec["fails"], path + ("fails",), checks),
            says=_says(r, spec.get("says"), path + ("says",), spec["fails"]),
        ))
    return tuple(out)
