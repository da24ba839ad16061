"""Run a lab's checks against a running instance. Checks run in parallel; probes in order.

A check passes when each of its probes passes, and fails at its first probe
that fails (later probes build on the earlier ones). A check with a probe
that could not observe is an ERROR: the lab could not be judged there, and
that is never a pass nor blamed on the learner as a failure.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from portlab.backend.base import NodeRunner
from portlab.errors import PortlabError, UsageError, printable
from portlab.model.context import Binding
from portlab.model.probekinds import SENDS
from portlab.model.types import Check, Lab, Match, Probe
from portlab.probes import rules, run_for
from portlab.probes.base import CannotObserve, Judged, Outcome, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, endpoint
from portlab.probes.rules import Explanation


@dataclass
class CheckResult(Judged):
    id: str
    title: str
    task: str | None
    outcome: Outcome
    probes: list[ProbeResult]
    hint: str
    seconds: float
    seen: str = ""  # what its failing probe saw (portlab.model.types.SEEN), which chose the hint
    commands: str = ""  # the solution's commands: `hint.commands`, for a failure
    explanation: Explanation | None = None  # the learner's own rules, for a failure (explain:)
    tries: int = 0  # how many times in a row it has failed on this instance, this one included
    commands_in: int = 0  # failed tries before `commands` is shown (0: shown, or there are none)

    def hold_commands(self, tries: int, after: int) -> None:
        """Keep the commands back until the check has failed `after` times in a row."""
        self.tries = tries
        if self.commands and tries < after:
            self.commands, self.commands_in = "", after - tries


@dataclass
class Report:
    lab: str
    instance: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def outcome(self) -> Outcome:
        """ERROR if any check could not be judged, else FAIL if any failed, else PASS."""
        outcomes = {r.outcome for r in self.results}
        for worst in (Outcome.ERROR, Outcome.FAIL):
            if worst in outcomes:
                return worst
        return Outcome.PASS

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    def result(self, check_id: str) -> CheckResult:
        return next(r for r in self.results if r.id == check_id)

    def failed_ids(self) -> list[str]:
        """The checks that failed (a verdict), not the ones that could not be judged."""
        return [r.id for r in self.results if r.outcome is Outcome.FAIL]

    def errored_ids(self) -> list[str]:
        return [r.id for r in self.results if r.outcome is Outcome.ERROR]


def resolve(probe: Probe, binding: Binding, nodes: NodeRunner) -> ProbeRun:
    """The probe with its templates rendered and its target turned into an address."""
    def text(key: str, template: str) -> str:
        return binding.render((*probe.path, key), template)

    ipv6 = bool(probe.options.get("ipv6"))
    target_name = text("to", probe.target) if probe.target else ""
    target = binding.address(target_name, ipv6=ipv6) if target_name else None
    options = {k: text(k, v) if isinstance(v, str) else v for k, v in probe.options.items()}
    def expected(key: str, value: Any) -> Any:
        if isinstance(value, str):
            return binding.render((*probe.path, "expect", key), value)
        if isinstance(value, Match):
            return Match(tuple(binding.render((*probe.path, "expect", key), v)
                               for v in value.values), value.negate)
        return value

    expect = {k: expected(k, v) for k, v in probe.expect.items()}
    resolved = Probe(probe.kind, probe.source, probe.target, probe.port, options, expect,
                     probe.key, probe.path)
    return ProbeRun(resolved, probe.source, binding.first_address(probe.source, ipv6=ipv6), target,
                    target_name, binding.context, nodes, binding.secret)


def run_probe(run: ProbeRun) -> ProbeResult:
    """One probe; a probe that could not observe is an ERROR result saying why, and so is a
    kind that failed in itself (a bug, perhaps another package's kind): never a verdict, and
    never a crash of the whole check."""
    try:
        return run_for(run.probe.kind)(run)
    except PortlabError:
        raise  # the instance or the engine, not this probe: the command says so
    except Exception as exc:  # noqa: BLE001 (any failure of the kind's own code)
        why = exc if isinstance(exc, CannotObserve) else CannotObserve(
            f"the {run.probe.kind} probe kind failed: {type(exc).__name__}: "
            f"{printable(str(exc))[:300]}",
            "this is a fault of the probe kind, not of your lab: report it")
        lab, instance = run.context.get("lab", "LAB"), run.context.get("instance", "")
        flag = "" if instance in ("", lab) else f" --instance {instance}"
        fresh = (f"start the lab afresh with `portlab down {lab}{flag}` and `portlab up "
                 f"{lab}{flag}` (changes made on its nodes are lost)")
        return ProbeResult(Outcome.ERROR, why.sent or f"a {run.probe.kind} probe",
                           f"{run.source} ({run.source_address})", endpoint(run),
                           "nothing could be observed", why.reason, why.data,
                           why.fix.replace(FRESH, fresh))


def run_check(check: Check, binding: Binding, nodes: NodeRunner) -> CheckResult:
    start = time.monotonic()
    lab = binding.lab
    results = []
    for probe in check.probes:
        result = run_probe(resolve(probe, binding, nodes))
        results.append(result)
        if not result.passed:
            break  # later probes of a check build on the earlier ones
    outcome = results[-1].outcome
    where = ("checks", lab.checks.index(check))
    hint = commands = seen = ""
    if outcome is Outcome.FAIL:
        seen = results[-1].observed(check.probes[len(results) - 1].expect)
        key, text = check.hint.for_seen(seen)
        hint = binding.render((*where, "hint") + ((key,) if key else ()), text) if text else ""
        if check.hint.commands:
            commands = binding.render((*where, "hint", "commands"), check.hint.commands)
    title = binding.render((*where, "title"), check.title)
    return CheckResult(check.id, title, check.task, outcome, results, hint.strip(),
                       time.monotonic() - start, seen, commands.strip())


def explain(result: CheckResult, check: Check, binding: Binding,
            nodes: NodeRunner) -> None:
    """For a failed check whose lab says which rules explain it: read them, send its failing
    probe's first packets once more, and keep which rules they matched (portlab.probes.rules).
    A TCP-based probe is sent again as a bare connection (a rule counts a connection's first
    packet; its answer need not be waited for), a UDP one with a short timeout."""
    if result.outcome is not Outcome.FAIL or check.explain is None:
        return
    probe = check.probes[len(result.probes) - 1]
    if probe.kind in ("tcp", "http", "minecraft"):
        options = {k: v for k, v in probe.options.items() if k in SENDS}
        probe = replace(probe, kind="tcp", options={**options, "timeout": EXPLAIN_SECONDS},
                        expect={"state": "open"})
    elif probe.kind == "udp":
        probe = replace(probe, options={**probe.options, "timeout": EXPLAIN_SECONDS})
    result.explanation = rules.explain(check.explain, nodes,
                                       lambda: run_probe(resolve(probe, binding, nodes)))


EXPLAIN_SECONDS = 1.5  # how long the probe sent once more, for the rules, waits for an answer


def _loud(check: Check) -> bool:
    """Whether the check scans every port a scanner knows (`expect.others`)."""
    return any(p.kind == "scan" and "others" in p.expect for p in check.probes)


def run_checks(lab: Lab, binding: Binding, nodes: NodeRunner,
               only: list[str] | None = None, *, explained: bool = False) -> Report:
    """Run the lab's checks (or the ones named in `only`) on the instance `binding` is of;
    `explained`: then, one at a time, show the learner's rules beside the failed checks that
    name them (`explain:`)."""
    checks = list(lab.checks)
    if only:
        unknown = [c for c in only if lab.check(c) is None]
        if unknown:
            raise UsageError(f"lab '{lab.name}' has no check "
                             + ", ".join(f"'{printable(c)}'" for c in unknown) + ". Checks: "
                             + ", ".join(c.id for c in lab.checks))
        checks = [c for c in checks if c.id in only]
    start = time.monotonic()
    # A check that scans thousands of ports runs after the others: its packets would crowd a
    # capture (a check watching a wire) that runs beside it, which then cannot tell what crossed.
    order = sorted(range(len(checks)), key=lambda i: _loud(checks[i]))
    done: dict[int, CheckResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(checks)))) as pool:
        for batch in ([i for i in order if not _loud(checks[i])],
                      [i for i in order if _loud(checks[i])]):
            done.update(zip(batch, pool.map(lambda i: run_check(checks[i], binding, nodes),
                                            batch), strict=True))
    results = [done[i] for i in range(len(checks))]
    if explained:  # after the others: counters then move by this probe's packets alone
        told = set()  # a check that failed as an earlier one did is explained by it
        for check, result in zip(checks, results, strict=True):
            if result.outcome is not Outcome.FAIL or result.probes[-1].words() in told:
                continue
            explain(result, check, binding, nodes)
            told.add(result.probes[-1].words())
    return Report(lab.name, binding.instance, results, time.monotonic() - start)
