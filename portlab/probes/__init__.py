"""Probes: one module per kind, each sending real traffic (or reading a node's own state).

    base      the outcome (pass / fail / error), a probe's inputs and its result, and
              ProbeKind: what a kind module declares
    common    running portlab-probe on a node, and judging servers' answers
    tcp, http, minecraft, udp, listening, capture, wireguard, scan: the kinds, each
              declaring its KIND (schema, verdict, node-side tools) in its own module
    runner    a lab's checks against a running instance -> a Report

The registry is portlab.model.probekinds: it finds these modules' KINDs and those
of installed packages (entry points); `kind(name)` is a kind as this side uses it.
"""

from __future__ import annotations

from collections.abc import Callable

from portlab.model import probekinds
from portlab.probes.base import ProbeKind, ProbeResult, ProbeRun


def kind(name: str) -> ProbeKind:
    """The kind called `name` (the loader has rejected lab files with unknown kinds). Raises
    LookupError for a kind that is not there or is not a ProbeKind."""
    found = probekinds.declared().get(name)
    if not isinstance(found, ProbeKind):
        raise LookupError(f"no probe kind '{name}' (kinds: {', '.join(probekinds.kinds())})")
    return found


def run_for(name: str) -> Callable[[ProbeRun], ProbeResult]:
    """The function that runs probes of kind `name`."""
    return kind(name).run

