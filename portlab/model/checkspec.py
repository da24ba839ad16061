"""The `checks:` part of a lab file: checks, their probes, and what each probe may say.

Which keys a probe takes depends on its kind (`portlab.model.probekinds`).
Beyond types, the loader checks what it can before anything starts: every
node a probe names exists, every `node.iface` exists, and an interface a
probe sends through (`device:`) or captures on (`iface:`) is one of that
node's own (or `lo`, or a tunnel the lab may bring up, like `wg0`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from portlab.model import templating
from portlab.model.probekinds import (
    SELF,
    KindSchema,
    OneOf,
    PortList,
    PortStates,
    broken,
    kinds,
    schema,
)
from portlab.model.reader import Reader, kind
from portlab.model.types import SEEN, Check, Explain, Hint, Match, Node, Probe, Range
from portlab.model.yamlsrc import Path as KeyPath
from portlab.model.yamlsrc import dotted

ID_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
CHECK_KEYS = ("id", "title", "task", "probes", "hint", "stretch", "explain")
HINT_KEYS = (*SEEN, "otherwise", "commands")
TABLES = ("filter", "nat", "mangle", "raw")
CHAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,28}$")  # iptables' own limit is 28 characters
PROBE_BASE_KEYS = ("kind", "from", "to", "port", "expect")
# Interfaces a node has beyond the lab's own: loopback, and tunnels its scripts bring up.
RUNTIME_IFACES = re.compile(r"^(lo|wg\d{1,4}|tun\d{1,4}|tap\d{1,4})$")
IFACE_FORM = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # what Linux accepts (IFNAMSIZ)


def read(r: Reader, value: Any, nodes: tuple[Node, ...], task_ids: set[str],
         stretch_tasks: set[str]) -> tuple[Check, ...]:
    """The checks; a check of a stretch task is a stretch check itself."""
    out = []
    ids: set[str] = set()
    items = r.seq(value, ("checks",), optional=False)
    if not items:
        raise r.error(("checks",), "a lab needs at least one check")
    for i, spec in enumerate(items):
        path: KeyPath = ("checks", i)
        spec = r.mapping(spec, path, allowed=CHECK_KEYS, required=("id", "title", "probes"))
        cid = r.unique(r.text(spec["id"], path + ("id",), pattern=ID_NAME, what="check id"),
                       path + ("id",), ids, "check id")
        task = r.text(spec.get("task"), path + ("task",), optional=True) or None
        if task is not None and task not in task_ids:
            raise r.error(path + ("task",), f"no task with id '{task}'")
        raw_probes = r.seq(spec["probes"], path + ("probes",), optional=False)
        if not raw_probes:
            raise r.error(path + ("probes",), "a check needs at least one probe")
        probes = tuple(_probe(r, pspec, path + ("probes", j), nodes)
                       for j, pspec in enumerate(raw_probes))
        out.append(Check(cid, r.text(spec["title"], path + ("title",)), task, probes,
                         _hint(r, spec.get("hint"), path + ("hint",)),
                         r.boolean(spec.get("stretch"), path + ("stretch",))
                         or task in stretch_tasks,
                         _explain(r, spec.get("explain"), path + ("explain",), nodes)))
    return tuple(out)


def _hint(r: Reader, value: Any, path: KeyPath) -> Hint:
    """`hint:` as one text (shown on any failure), or a mapping: a text for each thing a
    failing probe may have seen (SEEN's words), `otherwise`, and `commands`."""
    if value is None or isinstance(value, str):
        return Hint(r.text(value, path, optional=True))
    spec = r.mapping(value, path, allowed=HINT_KEYS)
    texts = {k: r.text(v, path + (k,)) for k, v in spec.items()}
    return Hint(texts.pop("otherwise", ""), tuple((k, v) for k, v in texts.items()
                                                 if k != "commands"),
                texts.get("commands", ""), mapping=True)


def _explain(r: Reader, value: Any, path: KeyPath, nodes: tuple[Node, ...]) -> Explain | None:
    """`explain: {node: router, rules: [nat PREROUTING, filter FORWARD]}`: the iptables chains
    a failing check shows, with the rules its probe matched."""
    if value is None:
        return None
    spec = r.mapping(value, path, allowed=("node", "rules"), required=("node", "rules"))
    node = r.text(spec["node"], path + ("node",))
    if node not in {n.name for n in nodes}:
        raise r.error(path + ("node",), f"no node '{node}'")
    chains = []
    for i, item in enumerate(r.seq(spec["rules"], path + ("rules",), optional=False)):
        words = r.text(item, path + ("rules", i)).split()
        family = words.pop(0) + " " if words[:1] == ["ip6"] else ""  # ip6tables' own
        if len(words) != 2 or words[0] not in TABLES or not CHAIN_NAME.match(words[1]):
            raise r.error(path + ("rules", i), "expected '[ip6] TABLE CHAIN' (a table of "
                          f"{', '.join(TABLES)}, then a chain), like 'nat PREROUTING'")
        chains.append((family + words[0], words[1]))
    if not chains:
        raise r.error(path + ("rules",), "name at least one chain")
    return Explain(node, tuple(chains))


def _probe(r: Reader, pspec: Any, ppath: KeyPath, nodes: tuple[Node, ...]) -> Probe:
    node_names = {n.name for n in nodes}
    if not isinstance(pspec, dict):
        raise r.error(ppath, f"expected a mapping, got {kind(pspec)}")
    kind_name = r.text(pspec.get("kind"), ppath + ("kind",))
    spec_of = schema(kind_name)
    if spec_of is None:
        why = broken().get(kind_name)
        raise r.error(ppath + ("kind",), f"unknown probe kind '{kind_name}'. Kinds: "
                      f"{', '.join(kinds())}" + (f". A package offers it, but {why}" if why
                                                 else ""))
    allowed = PROBE_BASE_KEYS + tuple(spec_of.options)
    r.mapping(pspec, ppath, allowed=allowed, required=("kind", "from"))
    source = r.text(pspec["from"], ppath + ("from",))
    if source not in node_names:
        raise r.error(ppath + ("from",), f"no node called '{source}'")
    ipv6 = pspec.get("ipv6") is True
    if ipv6 and pspec.get("fresh_source") is True:
        raise r.error(ppath + ("fresh_source",),
                      "fresh_source picks an IPv4 address: it cannot be used with ipv6")
    target = pspec.get("to")
    if target is not None:
        target = r.text(target, ppath + ("to",))
        _check_target(r, target, ppath + ("to",), nodes, ipv6)
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
            options[key] = typed(r, pspec[key], ppath + (key,), typ)
    expect_raw = pspec.get("expect") or {}
    expect_raw = r.mapping(expect_raw, ppath + ("expect",), allowed=tuple(spec_of.expects))
    expect = {k: typed(r, v, ppath + ("expect", k), spec_of.expects[k])
              for k, v in expect_raw.items()}
    for key in ("seen_source", "peer", "tunnel", "tunnel_from"):
        six = ipv6 and key in ("seen_source", "tunnel", "tunnel_from")
        if key == "seen_source" and expect.get(key) == SELF:
            continue  # the address the probe sent from, whichever it is
        if isinstance(expect.get(key), str):
            _check_target(r, expect[key], ppath + ("expect", key), nodes, six)
        elif isinstance(expect.get(key), Match):
            for value in expect[key].values:
                _check_target(r, value, ppath + ("expect", key), nodes, six)
    for value in _values(expect.get("served_by")):
        if not templating.is_template(value) and value not in node_names:
            raise r.error(ppath + ("expect", "served_by"), f"no node called '{value}'")
    if isinstance(options.get("via"), str):
        _check_target(r, options["via"], ppath + ("via",), nodes, ipv6)
    at = options.get("at")  # a node the probe also runs something on (capture)
    if isinstance(at, str) and not templating.is_template(at) and at not in node_names:
        raise r.error(ppath + ("at",), f"no node called '{at}'")
    _check_interfaces(r, spec_of, source, options, ppath, nodes)
    problem = spec_of.validate(options, expect) if spec_of.validate else None
    if problem:
        raise r.error(ppath, problem)
    return Probe(kind_name, source, target, port, options, expect, dotted(ppath), ppath)


def _values(value: Any) -> tuple[str, ...]:
    """The values of an expectation that is a value or a Match of values."""
    if isinstance(value, Match):
        return value.values
    return (value,) if isinstance(value, str) else ()


def typed(r: Reader, value: Any, path: KeyPath, typ: Any) -> Any:
    """A probe option or expectation of the given type (see portlab.model.probekinds)."""
    if isinstance(typ, PortList):
        if not isinstance(value, list) or not value:
            raise r.error(path, "expected a list of ports, e.g. [22, 80, 443]")
        return [r.integer(v, path + (k,), low=1, high=65535) for k, v in enumerate(value)]
    if isinstance(typ, PortStates):
        if not isinstance(value, dict) or not value:
            raise r.error(path, "expected a mapping of port to state, e.g. {22: filtered, "
                          "80: open}")
        states: dict[int, Any] = {}
        for key, state in value.items():
            number = int(key) if isinstance(key, str) and key.isdigit() else key  # YAML keys
            port = r.integer(number, path + (key,), low=1, high=65535)
            if port in states:
                raise r.error(path + (key,), f"port {port} is named twice")
            states[port] = typed(r, state, path + (key,), OneOf(typ.states))
        return states
    if isinstance(typ, OneOf):
        if not isinstance(value, dict):
            return typed(r, value, path, typ.base)
        if len(value) != 1 or next(iter(value)) not in ("any", "not"):
            raise r.error(path, "expected a value, {any: [values]} (one of them) or "
                          "{not: value} / {not: [values]} (none of them)")
        word, raw = next(iter(value.items()))
        items = raw if isinstance(raw, list) else [raw]
        if not items or (word == "any" and not isinstance(raw, list)):
            raise r.error(path + (word,), "expected a list of values" if word == "any"
                          else "expected a value or a list of values")
        return Match(tuple(typed(r, v, path + (word, k), typ.base) for k, v in enumerate(items)),
                     negate=word == "not")
    if typ is bool:
        return r.boolean(value, path)
    if isinstance(typ, Range):
        return r.integer(value, path, low=typ.low, high=typ.high)
    if typ is float:
        return r.seconds(value, path)
    if typ is str:
        return r.text(value, path)
    if isinstance(typ, tuple):  # a choice
        text = r.text(value, path)
        if text not in typ:
            raise r.error(path, f"expected one of: {', '.join(typ)}")
        return text
    raise AssertionError(typ)


def _check_interfaces(r: Reader, spec_of: KindSchema, source: str, options: dict[str, Any],
                      ppath: KeyPath, nodes: tuple[Node, ...]) -> None:
    """Interface options (`device`, `iface`) name an interface the node has, or one it makes."""
    for key, where in spec_of.interfaces.items():
        name = options.get(key)
        if not isinstance(name, str):
            continue
        if templating.is_template(name):
            try:  # like numbers: a template over params alone, rendered now
                name = templating.render(name, r.number_context()).strip()
            except Exception as exc:
                raise r.error(ppath + (key,), f"{templating.describe(exc)} (an interface name "
                              "may be a template over params only)") from None
            options[key] = name
        if not IFACE_FORM.fullmatch(name):
            raise r.error(ppath + (key,), f"'{name}' is not an interface name")
        if where is None or name in spec_of.also or RUNTIME_IFACES.fullmatch(name):
            continue
        node_name = source if where == "from" else options.get(where)
        node = next((n for n in nodes if n.name == node_name), None)
        if node is None:
            continue  # a templated `at`: its node is known only when the check runs
        if node.interface(name) is None:
            own = ", ".join(i.name for i in node.interfaces)
            extra = ", ".join(("lo", *spec_of.also))
            raise r.error(ppath + (key,), f"{node.name} has no interface '{name}'. Its "
                          f"interfaces: {own} (and {extra}, or a tunnel it brings up, like wg0)")


def _check_target(r: Reader, target: str, path: KeyPath, nodes: tuple[Node, ...],
                  ipv6: bool = False) -> None:
    """`target` names a node.iface of the lab (one on an IPv6 network, for a probe that goes
    by IPv6), or is an address of the probe's family."""
    if templating.is_template(target):
        return  # rendered when the check runs; tried with a sample instance at load
    family = "IPv6" if ipv6 else "IPv4"
    try:
        (ipaddress.IPv6Address if ipv6 else ipaddress.IPv4Address)(target)
        return
    except ValueError:
        pass
    node_name, _, iface = target.partition(".")
    node = next((n for n in nodes if n.name == node_name), None)
    found = node.interface(iface) if node is not None and iface else None
    if found is None:
        raise r.error(path, f"'{target}' is not a node.interface of this lab (like router.wan) "
                      f"or an {family} address")
    if ipv6 and not found.ipv6:
        raise r.error(path, f"'{target}' has no IPv6 address (its network '{found.network}' "
                      "is not an IPv6 network), and this probe goes by IPv6 (`ipv6: true`)")


def check_ids(r: Reader, value: Any, path: KeyPath, checks: tuple[Check, ...]) -> tuple[str, ...]:
    ids = {c.id for c in checks}
    out = []
    for i, cid in enumerate(r.seq(value, path, optional=False)):
        text = r.text(cid, path + (i,))
        if text not in ids:
            raise r.error(path + (i,), f"no check with id '{text}'")
        out.append(text)
    return tuple(out)
