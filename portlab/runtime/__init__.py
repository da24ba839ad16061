"""The runtime: lab instances brought up, used and removed, over the backend seam.

    instance    Instance: an instance as the engine lists it, and running commands on it
    lifecycle   up (plan, start, wait, clean up), down, finding instances
    ready       waiting until every node says it is ready
    scripts     running a lab's solution scripts on its nodes
    status      the status of an instance (docs/status-json.md)

Nothing here knows which engine runs the nodes. The functions below use the
backend in use (portlab.backend.get()); tests and tools call them directly.
"""

from __future__ import annotations

from portlab import backend as backends
from portlab.backend.base import Removed
from portlab.errors import UsageError
from portlab.model.plan import Plan
from portlab.model.types import Lab
from portlab.probes import runner
from portlab.probes.runner import Report
from portlab.progress import Progress, Quiet
from portlab.runtime import lifecycle
from portlab.runtime.inspect import status
from portlab.runtime.instance import Instance
from portlab.runtime.lifecycle import Shape
from portlab.runtime.ready import wait_ready
from portlab.runtime.scripts import run_scripts

__all__ = ["Instance", "Shape", "down", "down_all", "ensure_image", "find", "instances", "plan",
           "run_checks", "run_scripts", "status", "up", "wait_ready"]


def instances() -> dict[str, Instance]:
    """Every instance of this scope, by name."""
    return lifecycle.instances(backends.get())


def find(lab: str | None = None, instance: str | None = None) -> Instance:
    return lifecycle.find(backends.get(), lab, instance)


def plan(lab: Lab, instance: str, image: str, *, token: str | None = None,
         shape: Shape | None = None) -> Plan:
    return lifecycle.plan(backends.get(), lab, instance, image, token=token, shape=shape)


def up(lab: Lab, instance: str, progress: Progress | None = None, *,
       offline: bool | None = None, early: object | None = None,
       shape: Shape | None = None) -> Instance:
    return lifecycle.up(backends.get(), lab, instance, progress or Quiet(), offline=offline,
                        early=early, shape=shape)


def ensure_image(progress: Progress | None = None) -> str:
    """The node image's tag, built first if it is missing."""
    return backends.get().ensure_image(progress or Quiet())


def down(instance: str, progress: Progress | None = None) -> Removed:
    return lifecycle.down(backends.get(), instance, progress or Quiet())


def down_all(progress: Progress | None = None) -> Removed:
    return lifecycle.down_all(backends.get(), progress or Quiet())


def run_checks(lab: Lab, inst: Instance, only: list[str] | None = None, *,
               explained: bool = False) -> Report:
    """Run the lab's checks on the instance (by real traffic, through the instance's nodes);
    `explained`: with the learner's rules beside the failed checks that name them."""
    if inst.lab_name != lab.name:
        raise UsageError(f"instance '{inst.name}' runs lab '{inst.lab_name}', not '{lab.name}'")
    return runner.run_checks(lab, inst.binding(lab), inst, only, explained=explained)
