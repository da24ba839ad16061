"""Run a lab's checks against a running instance. Checks run in parallel; probes in order."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from portlab.checks import ProbeResult, ProbeRun, spec
from portlab.errors import UsageError, printable
from portlab.lab import Check, Lab, Probe, render_text
from portlab.runtime import Instance, context_for


@dataclass
class CheckResult:
    id: str
    title: str
    task: str | None
    passed: bool
    probes: list[ProbeResult]
    hint: str
    seconds: float


@dataclass
class Report:
    lab: str
    instance: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def result(self, check_id: str) -> CheckResult:
        return next(r for r in self.results if r.id == check_id)

    def failed_ids(self) -> list[str]:
        return [r.id for r in self.results if not r.passed]


def resolve(probe: Probe, lab: Lab, context: dict[str, Any], inst: Instance) -> ProbeRun:
    def text(key: str, template: str) -> str:
        return render_text(lab, f"{probe.key}.{key}", template, context)

    target_name = text("to", probe.target) if probe.target else ""
    target = context["addr"].get(target_name, target_name) or None
    node = lab.node(probe.source)
    source_address = ""
    if node is not None and node.interfaces:
        source_address = context["addr"][f"{node.name}.{node.interfaces[0].name}"]
    options = {k: text(k, v) if isinstance(v, str) else v for k, v in probe.options.items()}
    expect = {k: text(f"expect.{k}", v) if isinstance(v, str) else v
              for k, v in probe.expect.items()}
    resolved = Probe(probe.kind, probe.source, probe.target, probe.port, options, expect,
                     probe.key)
    return ProbeRun(resolved, probe.source, source_address, target, target_name or "", context,
                    inst.exec)


def run_check(check: Check, lab: Lab, context: dict[str, Any], inst: Instance) -> CheckResult:
    start = time.monotonic()
    results = []
    for probe in check.probes:
        kind = spec(probe.kind)
        assert kind is not None  # the loader rejected unknown kinds
        result = kind.run(resolve(probe, lab, context, inst))
        results.append(result)
        if not result.passed:
            break  # later probes of a check build on the earlier ones
    passed = all(r.passed for r in results)
    where = ("checks", lab.checks.index(check))
    hint = render_text(lab, (*where, "hint"), check.hint, context) if check.hint and not passed \
        else ""
    title = render_text(lab, (*where, "title"), check.title, context)
    return CheckResult(check.id, title, check.task, passed, results, hint.strip(),
                       time.monotonic() - start)


def run_checks(lab: Lab, inst: Instance, only: list[str] | None = None) -> Report:
    if inst.lab != lab.name:
        raise UsageError(f"instance '{inst.name}' runs lab '{inst.lab}', not '{lab.name}'")
    checks = list(lab.checks)
    if only:
        unknown = [c for c in only if lab.check(c) is None]
        if unknown:
            raise UsageError(f"lab '{lab.name}' has no check "
                             + ", ".join(f"'{printable(c)}'" for c in unknown) + ". Checks: "
                             + ", ".join(c.id for c in lab.checks))
        checks = [c for c in checks if c.id in only]
    context = context_for(inst, lab)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(checks)))) as pool:
        results = list(pool.map(lambda c: run_check(c, lab, context, inst), checks))
    return Report(lab.name, inst.name, results, time.monotonic() - start)
