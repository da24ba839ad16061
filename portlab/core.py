"""portlab's API: what the CLI does, callable from Python (tests, the benchmark, other tools).

Every function here takes plain arguments and returns data or raises a
PortlabError; none of them prints, except through the Progress it is given.
A lab that is up is always loaded with the params it was started with, so
its checks, solutions and brief agree with its servers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from portlab import backend as backends
from portlab import runtime
from portlab.backend.base import Pruned, Removed, Terminal
from portlab.doctor.findings import Report as DoctorReport
from portlab.errors import BackendUnreachable, PortlabError, RuntimeProblem, UsageError
from portlab.model import catalog as catalog_mod
from portlab.model.context import PREVIEW_TOKEN, Binding
from portlab.model.plan import Plan, new_token
from portlab.model.types import Lab
from portlab.model.variant import Variant, course_salt, student_id
from portlab.names import check_instance_name
from portlab.probes.runner import Report
from portlab.progress import Progress, Quiet
from portlab.runtime import Instance

if TYPE_CHECKING:  # what the slower parts return; imported by the functions that use them
    from portlab.demo.walk import StepResult
    from portlab.grading.batch import Batch, Entry
    from portlab.grading.result import Grade
    from portlab.grading.watch import Settings
    from portlab.labtest import LabTest
    from portlab.trace.events import Event
    from portlab.trace.live import Trace
    from portlab.web.classroom import Classroom
    from portlab.web.hosting import Settings as ClassroomSettings

Record = dict[str, object]  # a JSON object, as documented (docs/status-json.md, ...)


def labs() -> list[Lab]:
    """The labs that load, in the suggested order."""
    return catalog_mod.scan().labs


def catalog() -> catalog_mod.Catalog:
    """The labs that load, and apart the ones that do not (with why)."""
    return catalog_mod.scan()


def get_lab(name: str, params: Mapping[str, object] | None = None) -> Lab:
    return catalog_mod.find(name, params)


def _instance_name(instance: str | None) -> str | None:
    """A name given with --instance, checked (a typo is a clear error, not "not running")."""
    return None if instance is None else check_instance_name(instance)


def _asked(name: str | None, instance: str | None) -> str | None:
    """Check what a command that acts on a running lab was given: a lab name that exists
    (a typo is an error, not "nothing is up") and a valid instance name. The instance.
    A name with a lab folder is enough (loading the lab takes longer than removing it);
    any other is loaded, for the error that names the valid ones."""
    if name is not None and name not in catalog_mod.available():
        get_lab(name)
    return _instance_name(instance)


def _running(lab: Lab, instance: str | None) -> Instance | None:
    """The running instance of `lab` named `instance` (or its only one), if the engine can be
    asked at all (no SDK, no daemon: None)."""
    try:
        found = runtime.instances()
    except Exception:  # no Docker: describe the lab as it would be
        return None
    if instance is not None:
        inst = found.get(instance)
        return inst if inst is not None and inst.lab_name == lab.name else None
    matches = [i for i in found.values() if i.lab_name == lab.name]
    return matches[0] if len(matches) == 1 else None


def variant(name: str, student: str | None, salt: str | None = None) -> tuple[Lab, Variant]:
    """The lab of a student's variant (`student` None: the one CI names), and the variant."""
    from portlab.model.variant import variant_lab

    return variant_lab(name, student_id(student), course_salt(salt))


def binding(name: str, *, instance: str | None = None,
            params: Mapping[str, object] | None = None, student: str | None = None,
            salt: str | None = None) -> tuple[Binding, str]:
    """The lab bound to its running instance (its addresses, keys and params) if one is up;
    to a student's variant with `student`; else a preview. And whose variant it is ("")."""
    if student is not None:
        lab, var = variant(name, student, salt)
        return Binding(lab, lab.name, var.subnets, PREVIEW_TOKEN, key_seed=var.key_seed), \
            var.student
    lab = get_lab(name, params)
    running = None if params else _running(lab, _instance_name(instance))
    if running is not None:
        return running.binding(running.load_lab()), running.info.student
    return Binding.preview(lab), ""


def show(name: str, *, instance: str | None = None, params: Mapping[str, object] | None = None,
         student: str | None = None, salt: str | None = None, color: bool = False,
         width: int = 0) -> str:
    """The brief; of the running instance (its addresses, keys and params) if one is up; of a
    student's variant with `student`. Its drawing fits `width` columns where it can (0: any)."""
    from portlab.views import brief

    bound, who = binding(name, instance=instance, params=params, student=student, salt=salt)
    return brief.show(bound, color=color, student=who, width=width)


def diagram(name: str, path: Path, *, instance: str | None = None,
            params: Mapping[str, object] | None = None, student: str | None = None,
            salt: str | None = None) -> str:
    """Draw the lab's network into `path` (SVG or PNG by its suffix), with the addresses
    `show` would print. The format written."""
    from portlab.views import diagram as pictures
    from portlab.views import layout

    bound, _ = binding(name, instance=instance, params=params, student=student, salt=salt)
    return pictures.write(layout.of(bound), path)


def render_compose(name: str, *, instance: str | None = None, image_tag: str | None = None,
                   params: Mapping[str, object] | None = None) -> str:
    """The engine's file `up` would start, with subnets free right now (or preferred ones
    when the engine cannot be asked)."""
    lab = get_lab(name, params)
    inst = check_instance_name(lab.name if instance is None else instance)
    backend = backends.get()
    tag = image_tag or backend.image_tag()
    try:
        p = runtime.plan(lab, inst, tag)
    except PortlabError:
        p = Plan(Binding(lab, inst, lab.preferred_subnets(), new_token()), tag)
    return backend.render(p)


def render_kubernetes(name: str, *, instance: str | None = None, image_tag: str | None = None,
                      params: Mapping[str, object] | None = None,
                      registry: str | None = None) -> str:
    """The instance as Kubernetes manifests (docs/scaling.md), with the lab's preferred
    subnets: each instance has bridges of its own there, so instances never clash. The node
    image is `registry/TAG` with a registry, else the local tag. Asks no engine."""
    from portlab.backend.kubernetes import manifests as k8s

    lab = get_lab(name, params)
    inst = check_instance_name(lab.name if instance is None else instance)
    tag = image_tag or backends.get().image_tag()
    return k8s.render(Plan(Binding(lab, inst, lab.preferred_subnets(), new_token()), tag),
                      registry=registry)


def up(name: str, *, instance: str | None = None, progress: Progress | None = None,
       offline: bool | None = None, early: object | None = None,
       params: Mapping[str, object] | None = None, student: str | None = None,
       salt: str | None = None) -> Instance:
    """Start a lab (with `params` set, where given; a student's variant with `student`).
    `early`: what the backend started early."""
    shape = None
    if student is not None:
        if params:
            raise UsageError("--student and --param do not go together: a student's variant "
                             "sets its params itself")
        from portlab.grading.shape import shape as variant_shape

        lab, var = variant(name, student, salt)
        shape = variant_shape(lab, var)
    else:
        lab = get_lab(name, params)
    return runtime.up(lab, lab.name if instance is None else instance, progress or Quiet(),
                      offline=offline, early=early, shape=shape)


def down(name: str | None = None, *, instance: str | None = None, everything: bool = False,
         progress: Progress | None = None) -> Removed | None:
    """Remove one instance (or all with everything=True). None when nothing matched."""
    progress = progress or Quiet()
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
               if (instance is None or i.name == instance) and (name is None or i.lab_name == name)]
    if not matches:
        if name is None and instance is None:
            return None  # a plain `portlab down` with nothing up: nothing to do
        what = f"instance '{instance}'" if instance is not None else f"lab '{name}'"
        up = ", ".join(f"{found[n].name} ({found[n].lab_name})" for n in sorted(found))
        raise UsageError(f"no {what} is up; nothing was removed",
                         hint=f"up now: {up}" if up else "no portlab lab is up at all")
    inst = runtime.find(name, instance)  # more than one: says to pick with --instance
    removed = runtime.down(inst.name, progress)
    removed.instances = {inst.name: inst.lab_name}
    return removed


def status(name: str | None = None, *, instance: str | None = None) -> list[Record]:
    _asked(name, instance)
    found = runtime.instances()
    return [runtime.status(found[n]) for n in sorted(found)
            if (name is None or found[n].lab_name == name)
            and (instance is None or found[n].name == instance)]


def check(name: str | None = None, *, instance: str | None = None,
          only: list[str] | None = None, reveal: bool = False) -> Report:
    """A learner's check: every check (or `only` these) by real traffic; a failed one with the
    hint for what its probe saw and, where its lab names them, the learner's own rules. The
    solution's commands come only from the learner.REVEAL_AFTER-th failure in a row (or at
    once with `reveal`)."""
    from portlab import learner

    inst = runtime.find(name, _asked(name, instance))
    lab = inst.load_lab()
    nodes = [n.name for n in lab.nodes]
    inst.require_running(nodes)
    try:
        report = runtime.run_checks(lab, inst, only, explained=True)
    except BackendUnreachable:
        raise  # the daemon went away: asking it which node stopped cannot work
    except RuntimeProblem:
        inst.require_running(nodes)  # a node that stopped mid-check says more
        raise
    # A node killed mid-check makes probes fail for the wrong reason: say so instead.
    inst.require_running(nodes)
    judged = {r.id: r.passed for r in report.results if not r.errored}
    tries = learner.count_tries(lab.name, inst.name, inst.token, judged)
    for r in report.results:
        r.hold_commands(tries.get(r.id, 0), 0 if reveal else learner.REVEAL_AFTER)
    if only is None and report.results and report.passed:
        learner.record_solved(lab.name, inst.name)  # the learner's path (portlab next)
    return report


@dataclass(frozen=True)
class LearningPath:
    catalog: catalog_mod.Catalog  # the labs in order, and the lab folders that do not load
    solved: dict[str, Record]  # lab name -> when this user solved it (portlab.learner)
    next: Lab | None  # the first lab of the path not solved yet; None when all are


def path() -> LearningPath:
    """The learning path, and how far this user is along it."""
    from portlab import learner

    found, done = catalog(), learner.solved()
    return LearningPath(found, done, learner.next_lab(found.labs, done))


def check_list(name: str) -> list[tuple[str, str, int]]:
    """The lab's checks: id, title (rendered as the brief shows it) and points."""
    lab = get_lab(name)
    preview = Binding.preview(lab)
    return [(c.id, preview.render(("checks", i, "title"), c.title), lab.points[c.id])
            for i, c in enumerate(lab.checks)]


def find_student(given: str | None = None) -> tuple[str, str]:
    """The student to grade, and where the ID came from (portlab.model.variant)."""
    from portlab.model.variant import find_student as find

    return find(given)


def demo_texts(bound: Binding, index: int) -> dict[str, str]:
    """Step `index` of the lab's demo, its texts rendered for the instance."""
    from portlab.demo.walk import texts

    return texts(bound, index)


def trace(name: str | None = None, *, instance: str | None = None,
          nodes: Sequence[str] = (), expr: str = "", every: bool = False) -> Trace:
    """A live trace (portlab.trace.live.Trace, not started yet: use it as a context manager)
    of `nodes` of a running instance (default: the nodes that forward), with a tcpdump
    filter `expr` (default: the lab's own, `trace: {filter: ...}`, unless `every` packet)."""
    from portlab.trace.live import Trace

    inst = runtime.find(name, _asked(name, instance))
    lab = inst.load_lab()
    if not expr and not every and lab.trace_filter:
        expr = inst.binding(lab).render(("trace", "filter"), lab.trace_filter)
    made = Trace(inst, lab, list(nodes), expr=expr, instance=inst.name)
    inst.require_running(made.names)
    return made


def check_html(report: Report) -> str:
    """A check run as one self-contained HTML page (diagram, results, hints)."""
    from portlab.views import html

    inst = runtime.find(None, report.instance)
    return html.check_report(report, inst.binding(inst.load_lab()))


def live_page(instance: str, *, mode: str, traced: Sequence[str] = ()) -> str:
    """The live page of a running instance (`trace --web`, `demo --web`)."""
    from portlab.views import html

    inst = runtime.find(None, instance)
    return html.live_page(inst.binding(inst.load_lab()), mode=mode, traced=list(traced))


def demo(name: str, *, instance: str | None = None,
         progress: Progress | None = None) -> tuple[Instance, Lab, Binding, bool]:
    """Ready a lab for its demo: its running instance, or one started now. The instance, the
    lab (with its params), its binding, and whether it was started here."""
    lab = get_lab(name)
    if not lab.demo:
        with_demo = ", ".join(x.name for x in labs() if x.demo) or "none"
        raise UsageError(f"lab '{lab.name}' has no demo (its lab file has no `demo:` steps)",
                         hint=f"labs with a demo: {with_demo}")
    inst_name = _instance_name(instance) or lab.name
    found = runtime.instances().get(inst_name)
    started = False
    if found is None:
        found = up(name, instance=inst_name, progress=progress)
        started = True
    elif found.lab_name != lab.name:
        raise UsageError(f"instance '{inst_name}' runs lab '{found.lab_name}', not '{lab.name}'",
                         hint="name another with --instance")
    lab = found.load_lab()
    found.require_running([n.name for n in lab.nodes])
    return found, lab, found.binding(lab), started


def demo_step(inst: Instance, lab: Lab, bound: Binding, index: int, *,
              on_event: Callable[[Event], None] | None = None) -> StepResult:
    """Run step `index` of the lab's demo (portlab.demo.walk.run): a StepResult."""
    from portlab.demo import walk

    return walk.run(inst, lab, bound, index, on_event=on_event)


def prune(*, images: bool = False, current: bool = False, dry_run: bool = False,
          progress: Progress | None = None) -> Pruned:
    """Remove every container and network of this scope, build leftovers, and (with
    images=True) portlab images no container uses; see portlab/backend/docker/prune.py."""
    return backends.get().prune(progress or Quiet(), images=images, current=current,
                                dry_run=dry_run)


def solve(name: str | None = None, *, instance: str | None = None,
          wrong: str | None = None) -> tuple[Instance, str]:
    """Apply the reference solution (or a named wrong one) to a running instance.

    Returns the instance and what was applied ("solution" or the wrong one's name)."""
    inst = runtime.find(name, _asked(name, instance))
    lab = inst.load_lab()
    where: tuple[str | int, ...]
    if wrong is None:
        scripts, where = lab.solution, ("solution",)
        if not scripts:
            raise UsageError(f"lab '{lab.name}' has no reference solution")
        applied = "solution"
    else:
        found = lab.wrong(wrong)
        if found is None:
            names = ", ".join(w.name for w in lab.wrong_solutions) or "(none)"
            raise UsageError(f"lab '{lab.name}' has no wrong solution '{wrong}'. Known: {names}")
        scripts, where = found.apply, ("wrong_solutions", lab.wrong_solutions.index(found), "apply")
        applied = wrong
    runtime.run_scripts(inst, lab, scripts, where)
    return inst, applied


def attach(node: str | None, argv: Sequence[str], *, name: str | None = None,
           instance: str | None = None, tty: bool,
           env: Mapping[str, str] | None = None) -> NoReturn:
    """Become argv on a node of a running lab (a shell, `portlab exec`). Without a node, a
    UsageError names the lab's nodes, the ones the learner works on first."""
    inst = runtime.find(name, _asked(name, instance))
    if node is None:
        lab = inst.load_lab()
        mine = _solution_nodes(lab)
        listed = ", ".join(f"{n.name}" + (f" ({n.role})" if n.role else "")
                           + (" - you work here" if n.name in mine else "")
                           for n in [*(n for n in lab.nodes if n.name in mine),
                                     *(n for n in lab.nodes if n.name not in mine)])
        first = mine[0] if mine else lab.nodes[0].name
        raise UsageError(f"which node? The nodes of lab '{inst.lab_name}': {listed}",
                         hint=f"for example `portlab shell {first}`")
    info = inst.node(node)
    if not info.running:
        inst.require_running([node])
    inst.backend.attach(info, argv, tty=tty, env=env)


def _solution_nodes(lab: Lab) -> list[str]:
    return [n.name for n in lab.nodes if n.name in lab.solution]


def workplaces(lab: Lab) -> list[str]:
    """The nodes a learner works on: those the lab's solution sets up (else every node)."""
    return _solution_nodes(lab) or [n.name for n in lab.nodes]


def terminal(node: str, *, instance: str, rows: int = 24, cols: int = 80) -> Terminal:
    """A shell on a node of a running instance, with a terminal of its own, for a program to
    drive (the classroom's page). Only the lab's workplaces (see `workplaces`)."""
    inst = runtime.find(None, instance)
    allowed = workplaces(inst.load_lab())
    if node not in allowed:
        raise UsageError(f"no terminal on '{node}' in this lab",
                         hint=f"the nodes you work on: {', '.join(allowed)}")
    inst.require_running([node])
    return inst.terminal(node, ["bash", "-l"], rows=rows, cols=cols,
                         env={"TERM": "xterm-256color"})


def classroom_serve(settings: ClassroomSettings, progress: Progress,
                    links: Callable[[Classroom, str], None]) -> int:
    """Serve a lab to a class in the browser until SIGINT or SIGTERM (portlab.web.hosting);
    `links(room, base_url)` once it listens. Returns how many labs it removed at the end."""
    from portlab.web import hosting

    return hosting.serve(API, settings, progress, links)


def image_tag() -> str:
    return backends.get().image_tag()


def image_exists(tag: str) -> bool:
    return backends.get().image_exists(tag)


def image_build(progress: Progress, *, offline: bool | None = None, force: bool = False) -> str:
    return backends.get().build_image(progress, offline=offline, force=force)


def doctor(*, probe: bool = True) -> DoctorReport:
    """`portlab doctor`: every check of this machine (portlab.doctor.checks), a Report;
    probe=False starts no throwaway node."""
    from portlab.doctor import checks

    return checks.run(backends.get(), probe=probe)


# --- grading ------------------------------------------------------------------------------------


def test_lab(name: str, *, jobs: int | None = None, only: Sequence[str] = (),
             progress: Progress | None = None, mutants: bool = True) -> LabTest:
    """`portlab test`: every case of the lab, mutants too, on fresh instances
    (portlab.labtest.run)."""
    [result] = test_labs([name], jobs=jobs, only=only, progress=progress, mutants=mutants)
    return result


def test_labs(names: Sequence[str], *, jobs: int | None = None, only: Sequence[str] = (),
              progress: Progress | None = None, mutants: bool = True) -> list[LabTest]:
    """`portlab test` of several labs (none: every lab that loads): their cases in one pool,
    `jobs` at a time (portlab.labtest.run_many)."""
    from portlab import labtest

    chosen = [get_lab(name) for name in names] if names else labs()
    return labtest.run_many(chosen, jobs=jobs, only=only, progress=progress, mutants=mutants)


def grade(name: str, folder: Path, *, student: str | None = None, salt: str | None = None,
          progress: Progress | None = None, settings: Settings | None = None) -> Grade:
    """Grade one submission folder for a student (portlab.grading.session.grade)."""
    from portlab.grading.session import grade as grade_one

    return grade_one(name, folder, student_id(student), salt=course_salt(salt),
                     settings=settings, progress=progress)


def grade_class(name: str, root: Path, *, salt: str | None = None, parallel: int | None = None,
                progress: Progress | None = None, settings: Settings | None = None,
                on_done: Callable[[Entry], None] | None = None) -> Batch:
    """Grade a folder of submission folders, one per student (portlab.grading.batch)."""
    from portlab.grading.batch import grade_all

    return grade_all(name, root, salt=course_salt(salt), parallel=parallel, settings=settings,
                     progress=progress, on_done=on_done)


def classroom_init(name: str, folder: Path, *, salt: str | None = None,
                   install: str | None = None, assignment: str | None = None) -> list[str]:
    """Write a starter repository for the lab into `folder` (new or empty). Its files.
    `install`: what CI installs (default: this exact version of portlab from PyPI);
    `assignment`: the Classroom assignment's repository prefix (default: the lab's name)."""
    from portlab import requirement
    from portlab.grading import classroom
    from portlab.views import starter

    lab = get_lab(name)
    if not lab.submission:
        raise UsageError(f"lab '{lab.name}' takes no submission (its lab file has no "
                         "`submission:`), so it cannot be graded")
    the_salt = course_salt(salt)
    install = install or requirement()
    prefix = starter.assignment_prefix(assignment or lab.name)
    files = {
        "README.md": starter.readme(lab, the_salt),
        "INSTRUCTORS.md": starter.instructors(lab, the_salt, install, prefix),
        ".github/workflows/classroom.yml": starter.github_workflow(lab, the_salt, install,
                                                                   prefix),
        ".gitlab-ci.yml": starter.gitlab_ci(lab, the_salt, install, prefix),
        ".gitignore": f"{starter.JSON}\n{starter.JUNIT}\n{starter.IMAGE_TAR}\n",
    }
    for entry in lab.submission:
        files[f"{starter.SUBMISSION_DIR}/{entry.file}"] = starter.starter_file(lab, entry)
    return classroom.write(folder, files)


def classroom_solution(name: str, folder: Path, *, student: str | None = None,
                       salt: str | None = None, wrong: str | None = None
                       ) -> tuple[Variant, list[str]]:
    """Write the reference (or a known wrong) solution of a student's variant into `folder`,
    as a submission."""
    from portlab.grading import classroom

    var, files = classroom.solution_files(name, student_id(student), salt=course_salt(salt),
                                          wrong=wrong)
    return var, classroom.write(folder, files)


class Core:
    """portlab's front door as one type: each function above is a method of it. The CLI
    reaches it through portlab.cli.common.core(), so mypy checks every call the CLI makes;
    other tools may call the functions directly."""

    labs = staticmethod(labs)
    catalog = staticmethod(catalog)
    get_lab = staticmethod(get_lab)
    variant = staticmethod(variant)
    binding = staticmethod(binding)
    show = staticmethod(show)
    diagram = staticmethod(diagram)
    render_compose = staticmethod(render_compose)
    render_kubernetes = staticmethod(render_kubernetes)
    up = staticmethod(up)
    down = staticmethod(down)
    status = staticmethod(status)
    check = staticmethod(check)
    path = staticmethod(path)
    find_student = staticmethod(find_student)
    check_list = staticmethod(check_list)
    demo_texts = staticmethod(demo_texts)
    trace = staticmethod(trace)
    check_html = staticmethod(check_html)
    live_page = staticmethod(live_page)
    demo = staticmethod(demo)
    demo_step = staticmethod(demo_step)
    prune = staticmethod(prune)
    solve = staticmethod(solve)
    attach = staticmethod(attach)
    workplaces = staticmethod(workplaces)
    terminal = staticmethod(terminal)
    classroom_serve = staticmethod(classroom_serve)
    image_tag = staticmethod(image_tag)
    image_exists = staticmethod(image_exists)
    image_build = staticmethod(image_build)
    doctor = staticmethod(doctor)
    test_lab = staticmethod(test_lab)
    test_labs = staticmethod(test_labs)
    grade = staticmethod(grade)
    grade_class = staticmethod(grade_class)
    classroom_init = staticmethod(classroom_init)
    classroom_solution = staticmethod(classroom_solution)


API = Core()
