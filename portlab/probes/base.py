"""What every probe kind shares: its inputs, its result, and its three outcomes.

A probe sends real traffic from a lab node (with the node image's
`portlab-probe` tool, or reads the node's own state) and compares what came
back with the lab's `expect:`. Its outcome is one of three:

* PASS and FAIL are verdicts about the learner's network;
* ERROR means portlab could not observe (the node's tool is missing or
  crashed, an interface it was told to use does not exist, its answer was
  lost or garbled). It says why and what to do, and it is never counted as a
  pass, whatever `expect` says: "nothing came back" is a verdict only when
  the probe did send and did listen.

A kind raises `CannotObserve` for an ERROR; the runner turns it into the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from portlab.backend.base import NodeRunner
from portlab.model.probekinds import KindSchema
from portlab.model.types import Match, Probe


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"

    @classmethod
    def of(cls, passed: bool) -> Outcome:
        return cls.PASS if passed else cls.FAIL


class CannotObserve(Exception):
    """The probe could not observe: its outcome is ERROR, never a verdict."""

    def __init__(self, reason: str, fix: str = "", *, sent: str = "",
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix
        self.sent = sent
        self.data = data or {}


@dataclass
class ProbeRun:
    """One probe, resolved against a running instance: templates rendered, targets addressed."""

    probe: Probe
    source: str  # node name
    source_address: str  # the node's first address, for messages
    target: str | None  # IPv4 (or, with `ipv6: true`, IPv6) address, resolved
    target_name: str  # what the lab file said ("router.wan") for messages
    context: dict[str, Any]  # the lab's template context (addr, token, ...)
    nodes: NodeRunner  # runs commands on the instance's nodes (the backend seam)
    secret: str = field(default="", repr=False)  # verifies the servers' answers (node.answers)

    def address_of(self, ref: str) -> str:
        """The address of "node.iface" (its IPv6 one for a probe with `ipv6: true`)."""
        table = self.context["addr6" if self.probe.options.get("ipv6") else "addr"]
        return str(table.get(ref, ref))


class Judged:
    """Something with an outcome: a probe's result, a check's."""

    outcome: Outcome

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    @property
    def errored(self) -> bool:
        return self.outcome is Outcome.ERROR

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAIL


@dataclass
class ProbeResult(Judged):
    outcome: Outcome
    sent: str  # what was sent ("Minecraft status ping")
    source: str  # "friend (198.51.100.10)"
    target: str  # "router.wan = 198.51.100.1:25565"
    got: str  # what came back, in words
    why: str = ""  # for a failure: what it means; for an error: why nothing could be observed
    data: dict[str, Any] = field(default_factory=dict)  # the raw probe answer
    fix: str = ""  # for an error: what to do about it
    seen: str = ""  # for a failure: what was seen, in SEEN's words ("" : read from `data`)

    def words(self) -> tuple[str, str, str, str]:
        """What it sent, from where, to where, and what came back, as a learner reads them: two
        results with the same words are the same failure."""
        return (self.sent, self.source, self.target, self.got)

    def observed(self, expect: dict[str, Any]) -> str:
        """What this probe saw, in SEEN's words (a lab's hints are chosen by it): what its kind
        said, else what the port's state says, given what `expect` wanted."""
        if self.seen:
            return self.seen
        state = self.data.get("state")
        said = self.data.get("error")
        if state == "error":
            return "silent" if isinstance(said, str) and said.endswith("timed out") \
                else "wrong-answer"
        if state in ("open", "answered"):
            wanted = expect.get("state")
            values = wanted.values if isinstance(wanted, Match) else (str(wanted),)
            opened = any(v in ("open", "answered") for v in values)
            if isinstance(wanted, Match) and wanted.negate:
                opened = not opened
            closed = expect.get("answers") is False or (wanted is not None and not opened)
            return "open" if closed else "wrong-answer"
        return STATE_SEEN.get(str(state), "")


# The words of SEEN (portlab.model.types) for the states portlab-probe answers with.
STATE_SEEN = {"closed": "refused", "filtered": "timed-out", "open|filtered": "timed-out",
              "unreachable": "unreachable", "listening": "listening",
              "not-listening": "not-listening"}


@dataclass(frozen=True)
class ProbeKind:
    """A probe kind, declared in one module as its KIND (portlab.model.probekinds finds it):

    * schema: what a lab file may write for it (keys, types, rules), checked at load;
    * run: the verdict: the probe sent from its node through `ProbeRun.nodes` (the backend
      seam), what came back judged against `expect:`; CannotObserve when nothing could be;
    * node: the modules of portlab-probe (files of portlab/node) that it runs on the node,
      which the node image ships; () for a kind that runs the node's own programs (nmap, wg).
    """

    schema: KindSchema
    run: Callable[[ProbeRun], ProbeResult]
    node: tuple[str, ...] = ()

