"""Bring instances up and down, through the backend: plan, start, wait, clean up.

`up` holds the instance's lock (one `portlab up` per instance at a time),
removes the leftovers of an interrupted start, builds the node image if it is
missing, allocates subnets inside a start slot (so that it sees the labs
created while it queued), starts the instance, and waits until every node is
ready. Whatever goes wrong, or Ctrl-C, it removes what it started.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from portlab import locks
from portlab.backend.base import Backend, Removed, SubnetTaken
from portlab.errors import PortlabError, RuntimeProblem, UsageError
from portlab.model import allocate
from portlab.model.context import Binding
from portlab.model.plan import Limits, Plan, new_secret, new_token
from portlab.model.types import Lab
from portlab.names import check_instance_name, scope
from portlab.progress import Progress, Quiet
from portlab.runtime.instance import Instance
from portlab.runtime.ready import is_ready, wait_ready

START_ATTEMPTS = 5
START_BACKOFF = 0.3  # seconds, times the attempt, before allocating again
GRADE_PREFIX = "grade-"  # a grade's instance (portlab.grading.session), removed when it ends
VARIANT_WAIT = 120.0  # seconds a variant waits while other grades or scopes hold its subnets
VARIANT_POLL = 1.0  # seconds between two looks meanwhile


def instances(backend: Backend) -> dict[str, Instance]:
    """Every instance of this scope, by name."""
    return {name: Instance(info, backend) for name, info in backend.instances().items()}


@dataclass(frozen=True)
class Shape:
    """What an instance is beyond its lab: a student's variant (its subnets pinned), and for
    a grade the limits of its nodes and the graders beside them."""

    student: str = ""
    subnets: dict[str, IPv4Network] = field(default_factory=dict)  # pinned: exactly these
    key_seed: str = ""  # WireGuard keys from this, not from the token (a variant's)
    limits: Limits | None = None
    graders: tuple[str, ...] = ()


def plan(backend: Backend, lab: Lab, instance: str, image: str, *,
         token: str | None = None, shape: Shape | None = None) -> Plan:
    """Allocate subnets against what exists now and fix the token: a plan ready to start."""
    shape = shape or Shape()
    try:
        subnets = allocate.allocate(lab.requests(), instance, backend.taken_subnets(),
                                    pinned=shape.subnets)
    except allocate.AllocationError as exc:
        raise RuntimeProblem(str(exc)) from None
    return Plan(Binding(lab, instance, subnets, token or new_token(), key_seed=shape.key_seed,
                        secret=new_secret()),
                image,
                student=shape.student, limits=shape.limits, graders=shape.graders)


def up(backend: Backend, lab: Lab, instance: str, progress: Progress, *,
       offline: bool | None = None, early: object | None = None,
       shape: Shape | None = None) -> Instance:
    """Start an instance of `lab` and wait until every node is ready.

    Refuses if the instance is already up and whole; removes it first if it is
    a leftover of an interrupted start. On any failure or interruption,
    removes everything it started.
    """
    check_instance_name(instance)
    with locks.instance_lock(scope(), instance):
        return _up(backend, lab, instance, progress, offline=offline, early=early,
                   shape=shape or Shape())


def _up(backend: Backend, lab: Lab, instance: str, progress: Progress, *,
        offline: bool | None, early: object | None, shape: Shape) -> Instance:
    existing = instances(backend).get(instance)
    if existing is not None:
        if existing.lab_name == lab.name and _whole_and_ready(existing, lab):
            raise UsageError(
                f"lab '{lab.name}' is already up as instance '{instance}'; nothing was changed",
                hint=f"use it (`portlab shell <node>`), stop it (`portlab down {instance}`), or "
                     "start another with --instance NAME")
        if existing.lab_name != lab.name:
            raise UsageError(f"instance name '{instance}' is taken by lab '{existing.lab_name}'",
                             hint="pick another with --instance NAME")
        progress.note(f"found a half-started instance '{instance}'; removing it first")
        down(backend, instance, progress)
    image = backend.ensure_image(progress, offline=offline)
    try:
        with progress.phase(f"starting lab '{lab.name}' (instance {instance}, "
                            f"{len(lab.nodes)} nodes)"):
            started = _start(backend, lab, instance, image, progress, early, shape)
        with progress.phase("waiting until every node is ready"):
            wait_ready(started, progress, lab=lab)
        return started
    except BaseException:
        progress.note(f"cleaning up instance '{instance}' ...")
        try:
            backend.remove(instance, Quiet())
        except Exception as exc:  # keep the original error; say what is left
            why = exc.message if isinstance(exc, PortlabError) else exc
            progress.note(f"could not clean up ({why}); `portlab down --instance {instance}` "
                          "removes what is left")
        raise


def wait_for_variant(backend: Backend, shape: Shape, progress: Progress) -> None:
    """A student's variant needs exactly its own subnets. While another grade on this machine
    holds one (of any scope: each is removed when it ends), or a lab of another scope does
    (another user's, a test worker's), wait for it, up to VARIANT_WAIT; anything else in the
    way (a lab of this scope that is up, a network not portlab's) is for plan() to say, at
    once."""
    held_by_labs = getattr(backend, "lab_subnets", None)  # optional in the seam
    if not shape.subnets or held_by_labs is None:
        return
    deadline = None
    while True:
        mine = set(backend.instances())  # this scope's
        grades = [net for net, name in held_by_labs()
                  if name.startswith(GRADE_PREFIX) or name not in mine]
        held = [str(want) for want in shape.subnets.values()
                if any(want.overlaps(other) for other in grades)]
        if not held:
            return
        now = time.monotonic()
        if deadline is None:
            deadline = now + VARIANT_WAIT
            progress.detail(f"this variant's {_subnets(held)} held by another lab on this "
                            f"machine; waiting (up to {VARIANT_WAIT:.0f} s)")
        elif now >= deadline:
            raise RuntimeProblem(
                f"this variant's {_subnets(held)} still held by another lab on this machine "
                f"after {VARIANT_WAIT:.0f} s",
                hint="`docker network ls --filter label=portlab.subnet` lists the labs' "
                     "networks; grade again once that lab is down")
        time.sleep(VARIANT_POLL)


def _subnets(held: list[str]) -> str:
    return f"subnet {held[0]} is" if len(held) == 1 else f"subnets {', '.join(held)} are"


def _start(backend: Backend, lab: Lab, instance: str, image: str, progress: Progress,
           early: object | None, shape: Shape) -> Instance:
    problem = ""
    for _attempt in range(START_ATTEMPTS):
        wait_for_variant(backend, shape, progress)
        # Subnets are allocated inside the slot, so they see the networks of the labs that
        # were created while this one was queued.
        with locks.start_slot(lambda n: progress.detail(
                f"{n} labs are being created on this machine; waiting for a turn")):
            p = plan(backend, lab, instance, image, shape=shape)
            progress.detail(", ".join(f"{n} {s}" for n, s in p.subnets.items()))
            try:
                return Instance(backend.start(p, progress, early), backend)
            except SubnetTaken as exc:
                # Someone (perhaps another `portlab up` started at the same time) took one of
                # our subnets between allocation and creation: clean up and allocate again.
                problem = exc.message
                early = None  # used up
                if shape.subnets:  # a variant's own subnets: allocating again changes nothing
                    backend.remove(instance, Quiet())
                    raise RuntimeProblem(f"a subnet of this variant was taken meanwhile: "
                                         f"{problem}") from None
        progress.detail("a subnet was taken meanwhile; allocating again")
        backend.remove(instance, Quiet())
        # The engine reserves a network's subnet before it lists the network: give the other
        # start a moment to finish, so that the next allocation sees what it took.
        time.sleep(START_BACKOFF * (_attempt + 1) * (1 + random.random()))
    raise RuntimeProblem(f"could not find free subnets for the lab in {START_ATTEMPTS} tries: "
                         f"{problem}")


def _whole_and_ready(inst: Instance, lab: Lab) -> bool:
    if set(inst.nodes) != {n.name for n in lab.nodes}:
        return False
    if {n.name for n in lab.networks if not n.virtual} - set(inst.info.networks):
        return False
    return all(is_ready(inst, node) for node in inst.nodes.values())


def down(backend: Backend, instance: str, progress: Progress) -> Removed:
    """Remove every object of the instance, and its lock file."""
    removed = backend.remove(instance, progress)
    locks.forget_stale(scope(), instance)
    return removed


def down_all(backend: Backend, progress: Progress) -> Removed:
    """Remove every instance of this scope. One that cannot be removed (a network Docker
    keeps a stale endpoint on) does not stop the others: the error, raised at the end,
    names each one left and what the others removed."""
    total = Removed()
    failed: list[tuple[str, PortlabError]] = []
    for name, info in sorted(backend.instances().items()):
        try:
            got = backend.remove(name, progress)
        except PortlabError as exc:
            failed.append((name, exc))
            continue
        total.containers += got.containers
        total.networks += got.networks
        total.instances[name] = info.lab
    locks.forget_stale(scope())
    if failed:
        first = failed[0][1]
        names = ", ".join(f"'{n}'" for n, _ in failed)
        raise type(first)(
            f"removed {total.containers} containers and {total.networks} networks, but not "
            f"everything of {len(failed)} instance(s): {names}; first: {first.message}",
            hint=first.hint)
    return total


def find(backend: Backend, lab: str | None = None, instance: str | None = None) -> Instance:
    """The one running instance matching lab and/or instance name, or a clear error."""
    running = instances(backend)
    matches = [i for i in running.values()
               if (instance is None or i.name == instance) and (lab is None or i.lab_name == lab)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        what = f"instance '{instance}'" if instance else (f"lab '{lab}'" if lab else "lab")
        if running:
            names = ", ".join(f"{i.name} ({i.lab_name})" for i in running.values())
            raise UsageError(f"no running {what}. Running: {names}")
        raise UsageError(f"no running {what}: nothing is up",
                         hint=f"start one with `portlab up {lab or '<lab>'}`")
    names = ", ".join(f"{i.name} ({i.lab_name})" for i in matches)
    raise UsageError(f"more than one instance is running: {names}",
                     hint="say which with --instance NAME")
