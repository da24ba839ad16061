"""The probe kinds of the lab format: the registry of kinds, and the words their schemas use.

A kind is one module: `portlab.probes.<kind>` declares its KIND, with the
schema the loader validates lab files against (which keys a probe of that kind
takes, and their types: a KindSchema), the verdict (what it does with real
traffic) and the node-side tools it runs. `declared()` finds portlab's own
kinds (BUILTIN) and those that other installed packages register as entry
points. docs/probe-kinds.md documents every kind for lab authors.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

from portlab.model.types import Range  # a whole number from low to high


@dataclass(frozen=True)
class OneOf:
    """An expectation of type `base`, or a portlab.model.types.Match of such values:
    `{any: [A, B]}` (one of them), `{not: A}` or `{not: [A, B]}` (none of them)."""

    base: Any


@dataclass(frozen=True)
class PortList:
    """A list of ports (each a number or a template over params)."""


@dataclass(frozen=True)
class PortStates:
    """A mapping of port -> the state expected there (one of `states`, or a Match of them)."""

    states: tuple[str, ...]


SECONDS = float  # a number of seconds, more than 0 and at most 60
PORT = Range(1, 65535)
COUNT = Range(0, 10**6)

# Where an interface option's name is looked up: on the probe's own node ("from"), on the
# node another option names ("at"), or nowhere (an interface made at run time, like wg0).
FROM = "from"


@dataclass(frozen=True)
class KindSchema:
    kind: str
    summary: str
    options: dict[str, Any] = field(default_factory=dict)  # key -> type (see checkspec.typed)
    expects: dict[str, Any] = field(default_factory=dict)
    needs_target: bool = True
    needs_port: bool = True
    # option -> where the interface it names must exist: FROM, another option's node ("at"),
    # or None (only the name's form is checked: it is made at run time)
    interfaces: dict[str, str | None] = field(default_factory=dict)
    also: tuple[str, ...] = ()  # interface names valid beyond the node's own (e.g. "any")
    validate: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None


# expect keys shared by the kinds that talk to portlab-serve servers (probes.common.judge_answer):
# answers (anything came back), token (a genuine answer of this instance's servers, its proof
# checked), served_by (the node(s) whose server must answer; default: the node `to:` names),
# seen_source (the client address the server saw; `self`: the address this probe sent from,
# its own or, with fresh_source, the one picked for it), proxied (a proxy in between is right:
# the server's connection need not be the probe's own)
SELF = "self"
ANSWER_EXPECTS: dict[str, Any] = {"answers": bool, "token": bool, "seen_source": OneOf(str),
                                  "served_by": OneOf(str), "proxied": bool}

# The options of the kinds that send through portlab-probe's sockets. ipv6: `to:` (and
# `seen_source:`) name an interface's IPv6 address, and the probe goes by IPv6; via: a gateway
# on the same link (node.iface) the probe's packets go to, whatever the node's routes say (what
# a neighbour can do: a router must not pass such packets where they should not go)
SENDS: dict[str, Any] = {"timeout": SECONDS, "device": str, "source_port": PORT, "ipv6": bool,
                         "via": str, "fresh_source": bool}
DEVICE: dict[str, str | None] = {"device": FROM}


class Declared(Protocol):
    """What a kind module declares as its KIND, as the lab format sees it (the probes' side,
    portlab.probes.base.ProbeKind, adds what the kind does)."""

    @property
    def schema(self) -> KindSchema: ...

    @property
    def node(self) -> tuple[str, ...]: ...  # portlab-probe's modules it runs on the node


# The registry. portlab's own kinds: a module each, whose KIND declares the kind's schema, its
# verdict and the node-side tools it runs (portlab.probes.base.ProbeKind). Other packages add
# kinds through entry points in the group ENTRY_POINTS, each naming such a KIND
# (docs/architecture.md, "Add a probe kind").
BUILTIN = {kind: f"portlab.probes.{kind}" for kind in (
    "tcp", "http", "minecraft", "udp", "listening", "capture", "wireguard", "scan")}
ENTRY_POINTS = "portlab.probe_kinds"

_found: dict[str, Declared] | None = None
_broken: dict[str, str] = {}  # an entry point that did not load -> why
_lock = threading.Lock()


def declared() -> dict[str, Declared]:
    """Every probe kind, by name: portlab's own, then those of installed packages. A package's
    kind that does not load, or that takes the name of a kind already found, is left out (and
    `broken()` says why): one bad plugin never stops the labs that do not use it."""
    global _found
    with _lock:
        if _found is None:
            found: dict[str, Declared] = {}
            for kind, module in BUILTIN.items():
                found[kind] = importlib.import_module(module).KIND
            for entry in entry_points(group=ENTRY_POINTS):
                _add(found, entry)
            _found = found
        return _found


def _add(found: dict[str, Declared], entry: EntryPoint) -> None:
    where = f"{entry.value} (entry point '{entry.name}' in {ENTRY_POINTS})"
    if entry.name in found:
        _broken[entry.name] = f"{where}: a kind of that name is already there"
        return
    try:
        kind = entry.load()
        schema = kind.schema
    except Exception as exc:  # a plugin's own fault, whatever it is
        _broken[entry.name] = f"{where} did not load: {type(exc).__name__}: {exc}"
        return
    if not isinstance(schema, KindSchema) or schema.kind != entry.name:
        _broken[entry.name] = f"{where}: its KIND's schema is not a KindSchema named '{entry.name}'"
        return
    found[entry.name] = kind


def broken() -> dict[str, str]:
    """The entry points of kinds that were left out, and why."""
    declared()
    return dict(_broken)


def forget() -> None:
    """Find the kinds again on the next call (after a package was installed: tests)."""
    global _found
    with _lock:
        _found = None
        _broken.clear()


def schema(kind: str) -> KindSchema | None:
    found = declared().get(kind)
    return found.schema if found is not None else None


def kinds() -> list[str]:
    return sorted(declared())


def node_tools() -> list[str]:
    """The portlab-probe modules (files of portlab/node) that the kinds run on nodes: the node
    image ships them."""
    return sorted({tool for kind in declared().values() for tool in kind.node})
