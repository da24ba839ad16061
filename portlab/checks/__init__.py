"""Probe kinds: one module each, registered here by name.

A probe sends real traffic from a lab node (with the node image's
`portlab-probe` tool, or the lab's own servers' answers) and compares what
came back with the lab's `expect:`. Lab files name a kind; the loader asks
`spec(kind)` which options and expectations that kind accepts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portlab.docker_api import ExecResult
from portlab.lab import Probe

KIND_MODULES = {
    "tcp": "portlab.checks.tcp",
    "http": "portlab.checks.http",
    "minecraft": "portlab.checks.minecraft",
    "udp": "portlab.checks.udp",
    "listening": "portlab.checks.listening",
    "capture": "portlab.checks.capture",
    "wireguard": "portlab.checks.wireguard",
}


@dataclass
class ProbeRun:
    """One probe, resolved against a running instance."""

    probe: Probe
    source: str  # node name
    source_address: str  # the node's first address, for messages
    target: str | None  # IPv4 address, resolved
    target_name: str  # what the lab file said ("router.wan") for messages
    context: dict[str, Any]  # the lab's template context (addr, token, ...)
    exec: Callable[[str, list[str]], ExecResult]  # run argv on a node of this instance

    def address_of(self, ref: str) -> str:
        return self.context["addr"].get(ref, ref)


@dataclass
class ProbeResult:
    passed: bool
    sent: str  # what was sent ("Minecraft status ping")
    source: str  # "friend (198.51.100.10)"
    target: str  # "router.wan = 198.51.100.1:25565"
    got: str  # what came back, in words
    why: str = ""  # for a failure: what it means
    data: dict[str, Any] = field(default_factory=dict)  # the raw probe answer


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    summary: str
    run: Callable[[ProbeRun], ProbeResult]
    options: dict[str, Any] = field(default_factory=dict)
    expects: dict[str, Any] = field(default_factory=dict)
    needs_target: bool = True
    needs_port: bool = True
    validate: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None


def spec(kind: str) -> ProbeSpec | None:
    module = KIND_MODULES.get(kind)
    if module is None:
        return None
    found: ProbeSpec = importlib.import_module(module).SPEC
    return found


def kinds() -> list[str]:
    return sorted(KIND_MODULES)
