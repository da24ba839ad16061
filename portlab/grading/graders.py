"""Where a grade's probes run: in the grader beside a node the submission ran on.

A grader shares the node's network and processes, not its files (see
portlab.model.plan.Plan.graders), so nothing the submission writes on the
node changes what a probe reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from portlab.backend.base import ExecResult, Stream
from portlab.runtime import Instance


class GraderRunner:
    """Runs probes: on the grader beside a node the submission ran on, on the node itself
    elsewhere (NodeRunner)."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        grader = self.inst.info.graders.get(node)
        if grader is None:
            return self.inst.exec(node, argv)
        return self.inst.backend.exec(grader, argv)

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        grader = self.inst.info.graders.get(node)
        if grader is None:
            return self.inst.stream(node, argv)
        return self.inst.backend.stream(grader, argv)
