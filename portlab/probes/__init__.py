"""Probes: one module per kind, each sending real traffic (or reading a node's own state).

    base      the outcome (pass / fail / error), a probe's inputs and its result
    common    running portlab-probe on a node, and judging servers' answers
    tcp, http, minecraft, udp, listening, capture, wireguard, scan: the kinds
    runner    a lab's checks against a running instance -> a Report

A kind's keys and types in a lab file are the lab format's (portlab.model.probekinds);
what it does is here. `run_for(kind)` is the registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from portlab.probes.base import ProbeResult, ProbeRun

KIND_MODULES = {
    "tcp": "portlab.probes.tcp",
    "http": "portlab.probes.http",
    "minecraft": "portlab.probes.minecraft",
    "udp": "portlab.probes.udp",
    "listening": "portlab.probes.listening",
    "capture": "portlab.probes.capture",
    "wireguard": "portlab.probes.wireguard",
    "scan": "portlab.probes.scan",
}


def run_for(kind: str) -> Callable[[ProbeRun], ProbeResult]:
    """The function that runs probes of `kind` (the loader has rejected unknown kinds)."""
    run: Callable[[ProbeRun], ProbeResult] = importlib.import_module(KIND_MODULES[kind]).run
    return run


def kinds() -> list[str]:
    return sorted(KIND_MODULES)
