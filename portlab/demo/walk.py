"""Run the steps of a lab's `demo:` (portlab.model.demospec) on a running instance.

A step, in this order: applies the reference solution (`solve`), runs its
command on its node with the nodes of `trace` traced meanwhile, then runs
the lab's checks (`check`). What it did comes back as a StepResult for the
terminal and the live page to show; trace events are also handed, as they
come, to `on_event` (the live page lights links with them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from portlab import runtime
from portlab.errors import PortlabError
from portlab.model.context import Binding
from portlab.model.types import DemoStep, Lab
from portlab.probes.runner import Report
from portlab.runtime import Instance
from portlab.trace.events import Event
from portlab.trace.live import Trace

COMMAND_SECONDS = 30  # a step's command is stopped after this long
AFTER_SECONDS = 0.5  # the trace goes on this long after the command, for the last answers


@dataclass
class StepResult:
    index: int  # from 0
    total: int
    title: str
    say: str
    look: str
    node: str | None
    command: str
    output: str = ""
    exit_code: int | None = None
    traced: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    solved: bool = False
    report: Report | None = None


def texts(binding: Binding, index: int) -> dict[str, str]:
    """The step's texts, rendered for this instance."""
    step = binding.lab.demo[index]
    return {key: binding.render(("demo", index, key), getattr(step, key))
            for key in ("title", "say", "look", "run")}


def run(inst: Instance, lab: Lab, binding: Binding, index: int, *,
        on_event: Callable[[Event], None] | None = None) -> StepResult:
    step: DemoStep = lab.demo[index]
    words = texts(binding, index)
    result = StepResult(index, len(lab.demo), words["title"], words["say"], words["look"],
                        step.node, words["run"])
    if step.solve:
        runtime.run_scripts(inst, lab, lab.solution, ("solution",))
        result.solved = True
    if step.trace:
        expr = binding.render(("demo", index, "trace", "filter"), step.trace_filter)
        with Trace(inst, lab, step.trace, expr=expr, instance=inst.name) as trace:
            result.traced = trace.names

            def follow() -> None:  # as they come: the live page lights links meanwhile
                try:
                    for event in trace.events():
                        result.events.append(event)
                        if on_event is not None:
                            on_event(event)
                except PortlabError:
                    pass  # a node that stopped: the command's own result says so

            reader = threading.Thread(target=follow, daemon=True, name="demo-trace")
            reader.start()
            try:
                _command(inst, step, result)
                time.sleep(AFTER_SECONDS)
            finally:
                trace.stop()
                reader.join(timeout=5)
    else:
        _command(inst, step, result)
    if step.check:
        result.report = runtime.run_checks(lab, inst)
    return result


def _command(inst: Instance, step: DemoStep, result: StepResult) -> None:
    if not result.command or step.node is None:
        return
    done = inst.exec(step.node, ["timeout", str(COMMAND_SECONDS), "sh", "-c", result.command])
    result.output = (done.stdout + done.stderr).rstrip()
    result.exit_code = done.exit_code
    if done.exit_code == 124:
        result.output += f"\n(stopped after {COMMAND_SECONDS} s)"
