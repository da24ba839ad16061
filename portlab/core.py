"""portlab's API: what the CLI does, callable from Python (tests, the benchmark, other tools).

Every function here takes plain arguments and returns data or raises a
PortlabError; none of them prints, except through the Progress it is given.
"""

from __future__ import annotations

from typing import Any

from portlab import brief, compose, render, runtime
from portlab import lab as labs_mod
from portlab import prune as prune_mod
from portlab.checks.runner import Report, run_checks
from portlab.errors import DockerUnreachable, RuntimeProblem, UsageError
from portlab.lab import Lab
from portlab.progress import Progress


def labs() -> list[Lab]:
    return sorted(labs_mod.load_all(), key=lambda lab: (
        labs_mod.DIFFICULTIES.index(lab.difficulty), lab.name))


def get_lab(name: str) -> Lab:
    return labs_mod.find(name)


def _instance_name(instance: str | None) -> str | None:
    """A name given with --instance, checked (a typo is a clear error, not "not running")."""
    return None if instance is None else render.check_instance_name(instance)


def _asked(name: str | None, instance: str | None) -> str | None:
    """Check what a command that acts on a running lab was given: a lab name that exists
    (a typo is an error, not "nothing is up") and a valid instance name. The instance."""
    if name is not None:
        get_lab(name)
    return _instance_name(instance)


def _running(lab: Lab, instance: str | None) -> runtime.Instance | None:
    """The running instance of `lab` named `instance` (or its only one), if Docker is reachable."""
    try:
        found = runtime.instances()
    except Exception:  # no Docker: describe the lab as it would be
        return None
    if instance is not None:
        inst = found.get(instance)
        return inst if inst is not None and inst.lab == lab.name else None
    matches = [i for i in found.values() if i.lab == lab.name]
    return matches[0] if len(matches) == 1 else None


def show(name: str, *, instance: str | None = None, color: bool = False) -> str:
    lab = get_lab(name)
    running = _running(lab, _instance_name(instance))
    if running is not None:
        return brief.show(lab, running.subnets(), instance=running.name, token=running.token,
                          color=color)
    return brief.show(lab, lab.preferred_subnets(), instance=None, token="<token>", color=color)


def render_compose(name: str, *, instance: str | None = None, image_tag: str | None = None,
                   plan_only: bool = False) -> str:
    """The compose file `up` would start, with subnets free right now (or preferred ones
    when Docker cannot be asked)."""
    from portlab import image

    lab = get_lab(name)
    inst = render.check_instance_name(lab.name if instance is None else instance)
    tag = image_tag or image.node_tag()
    try:
        p = runtime.plan(lab, inst, tag)
    except Exception:
        p = render.Plan(lab, inst, lab.preferred_subnets(), render.new_token(), tag)
    return render.compose(p)


def up(name: str, *, instance: str | None = None, progress: Progress | None = None,
       offline: bool | None = None, early: compose.Ahead | None = None) -> runtime.Instance:
    """Start a lab. `early`: Compose started ahead for it (compose.Ahead), used if it fits."""
    lab = get_lab(name)
    return runtime.up(lab, lab.name if instance is None else instance,
                      progress or Progress(quiet=True), offline=offline, early=early)


def down(name: str | None = None, *, instance: str | None = None, everything: bool = False,
         progress: Progress | None = None) -> runtime.Removed | None:
    """Remove one instance (or all with everything=True). None when nothing matched."""
    progress = progress or Progress(quiet=True)
    if everything:
        if name is not None or instance is not None:
            raise UsageError("--all removes every lab instance, so it takes no LAB or --instance; "
                             "nothing was removed",
                             hint="`portlab down --all` alone, or `portlab down LAB` / "
                                  "`portlab down --instance NAME` for one")
        return runtime.down_all(progress)
    _asked(name, instance)
    found = runtime.instances()
    matches = [i for i in found.values()
               if (instance is None or i.name == instance) and (name is None or i.lab == name)]
    if not matches:
        if name is None and instance is None:
            return None  # a plain `portlab down` with nothing up: nothing to do
        what = f"instance '{instance}'" if instance is not None else f"lab '{name}'"
        up = ", ".join(f"{i.name} ({i.lab})" for i in sorted(found.values(), key=lambda i: i.name))
        raise UsageError(f"no {what} is up; nothing was removed",
                         hint=f"up now: {up}" if up else "no portlab lab is up at all")
    inst = runtime.find_instance(name, instance)  # more than one: says to pick with --instance
    return runtime.down(inst.name, progress)


def status(name: str | None = None, *, instance: str | None = None) -> list[dict[str, Any]]:
    _asked(name, instance)
    found = runtime.instances()
    out = []
    for inst in sorted(found.values(), key=lambda i: i.name):
        if (name is None or inst.lab == name) and (instance is None or inst.name == instance):
            out.append(runtime.status(inst))
    return out


def check(name: str | None = None, *, instance: str | None = None,
          only: list[str] | None = None) -> Report:
    inst = runtime.find_instance(name, _asked(name, instance))
    lab = get_lab(inst.lab)
    nodes = [n.name for n in lab.nodes]
    runtime.require_running(inst, nodes)
    try:
        report = run_checks(lab, inst, only)
    except DockerUnreachable:
        raise  # the daemon went away: asking it which node stopped cannot work
    except RuntimeProblem:
        runtime.require_running(inst, nodes)  # a node that stopped mid-check says more
        raise
    # A node killed mid-check makes probes fail for the wrong reason: say so instead.
    runtime.require_running(inst, nodes)
    return report


def prune(*, images: bool = False, current: bool = False, dry_run: bool = False,
          progress: Progress | None = None) -> prune_mod.Pruned:
    """Remove every container and network of this scope, build leftovers, and (with
    images=True) portlab images no container uses; see portlab/prune.py."""
    return prune_mod.prune(progress or Progress(quiet=True), images=images, current=current,
                           dry_run=dry_run)


def solve(name: str | None = None, *, instance: str | None = None,
          wrong: str | None = None) -> tuple[runtime.Instance, str]:
    """Apply the reference solution (or a named wrong one) to a running instance.

    Returns the instance and what was applied ("solution" or the wrong one's name)."""
    inst = runtime.find_instance(name, _asked(name, instance))
    lab = get_lab(inst.lab)
    where: tuple[str | int, ...]
    if wrong is None:
        scripts, where = lab.solution, ("solution",)
        if not scripts:
            raise UsageError(f"lab '{lab.name}' has no reference solution")
        applied = "solution"
    else:
        found = next((w for w in lab.wrong_solutions if w.name == wrong), None)
        if found is None:
            names = ", ".join(w.name for w in lab.wrong_solutions) or "(none)"
            raise UsageError(f"lab '{lab.name}' has no wrong solution '{wrong}'. Known: {names}")
        scripts, where = found.apply, ("wrong_solutions", lab.wrong_solutions.index(found), "apply")
        applied = wrong
    runtime.run_scripts(inst, lab, scripts, where)
    return inst, applied


def node_container(node: str, name: str | None = None, instance: str | None = None) -> Any:
    inst = runtime.find_instance(name, _asked(name, instance))
    container = inst.container(node)
    if container.attrs.get("State", "running") != "running":
        runtime.require_running(inst, [node])
    return container
