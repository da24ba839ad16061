"""The instance a grade starts (and `up --student`, which starts the lab a student is graded
on): the variant's subnets and keys, and for a grade its limits and graders."""

from __future__ import annotations

from portlab.model.plan import Limits
from portlab.model.types import Lab
from portlab.model.variant import Variant
from portlab.runtime import Shape


def probed_nodes(lab: Lab) -> set[str]:
    """The nodes probes run on: their `from`, a capture's `at`, and the target of a scan of
    every port (it reads the ports the target's own rules and sockets name: a submission that
    replaced `iptables-save` there must not hide one)."""
    nodes = {n.name for n in lab.nodes}
    found: set[str] = set()
    for check in lab.checks:
        for probe in check.probes:
            found.add(probe.source)
            if isinstance(probe.options.get("at"), str):
                found.add(str(probe.options["at"]))
            if probe.kind == "scan" and "others" in probe.expect and probe.target:
                target = probe.target.split(".")[0]
                if target in nodes:
                    found.add(target)
    return found


def shape(lab: Lab, variant: Variant, limits: Limits | None = None,
          graders: bool = False) -> Shape:
    """The instance a grade (or `up --student`) starts: the variant's subnets and keys; for a
    grade, limits, and a grader beside each node the submission runs on and a probe runs on."""
    probed = probed_nodes(lab)
    touched = tuple(n for n in dict.fromkeys(f.node for f in lab.submission)
                    if n in probed) if graders else ()
    return Shape(student=variant.student, subnets=dict(variant.subnets),
                 key_seed=variant.key_seed,
                 limits=limits, graders=touched)
