"""One grade: a fresh instance of a student's variant, their files applied, checks, points.

The verdict comes only from probes the grader runs. Probes of a node the
submission runs on run in the grader beside it (its network and processes,
not its files: see portlab.model.plan.Plan.graders), so nothing the
submission writes there changes what a probe reports. The submission runs
only inside its own nodes, under limits: a time for each file and for the
whole grade, a pids and a memory limit per node, a size for each file it
writes, and a cap on what it writes to a node's disk. Over a limit, the
grade fails and says which; whatever happens, everything started for the
grade is removed (Ctrl-C too).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from portlab import runtime
from portlab.errors import PortlabError, RuntimeProblem
from portlab.grading import submission as sub
from portlab.grading.apply import apply, broken, healthy, is_empty
from portlab.grading.graders import GraderRunner
from portlab.grading.result import CheckGrade, Grade, Status
from portlab.grading.shape import shape
from portlab.grading.watch import Settings, Stopped, Watch
from portlab.model.types import Lab
from portlab.model.variant import Variant, variant_lab
from portlab.probes.runner import run_checks
from portlab.progress import Progress, Quiet
from portlab.runtime import Instance
from portlab.runtime.lifecycle import GRADE_PREFIX


def grade(name: str, folder: Path, student: str, *, salt: str = "",
          settings: Settings | None = None, progress: Progress | None = None) -> Grade:
    """Grade the submission in `folder` for `student` (see the module's docstring).

    Raises SubmissionError (exit 2) for an unusable submission before anything starts, and
    a RuntimeProblem (exit 3) when grading cannot start at all; any other outcome is a
    Grade, whose status is ERROR when it could not be judged."""
    settings = settings or Settings()
    progress = progress or Quiet()
    lab, variant = variant_lab(name, student, salt)
    files = sub.read(lab, folder)
    instance = f"{GRADE_PREFIX}{_slug(student)}-{secrets.token_hex(3)}"
    started = time.monotonic()
    inst = runtime.up(lab, instance, progress, shape=shape(lab, variant, settings.limits, True))
    try:
        return _judge(lab, variant, files, inst, settings, progress, started)
    finally:
        runtime.down(instance, Quiet())


def not_run(name: str, student: str, salt: str, why: str) -> Grade:
    """The grade of a submission whose lab could not start: an error, with the reason."""
    lab, variant = variant_lab(name, student, salt)
    return Grade(lab.name, variant.student, variant, Status.ERROR, 0, lab.max_points,
                 lab.pass_mark, message=f"grading could not run: {why}")


def _slug(student: str) -> str:
    text = "".join(ch if ch.isalnum() else "-" for ch in student)[:20].strip("-")
    return text or "student"


def _judge(lab: Lab, variant: Variant, files: list[sub.Submitted], inst: Instance,
           settings: Settings, progress: Progress, started: float) -> Grade:
    result = Grade(lab.name, variant.student, variant, Status.FAILED, 0, lab.max_points,
                   lab.pass_mark)
    watch = Watch(inst, [f.entry.node for f in files], settings, started)
    watch.start()
    try:
        touched = {f.entry.node for f in files}
        with progress.phase(f"applying {len(files)} submitted file(s)"):
            for item in files:
                result.files.append(apply(inst, lab, item, settings, watch))
            watch.look(touched)
        healthy(inst, touched)
        watch.disk(touched)  # before any check, every time: a breach fails the grade
        with progress.phase("checking, by real traffic"):
            binding = inst.binding(lab)
            report = run_checks(lab, binding, GraderRunner(inst))
        watch.look(touched)
        watch.stop()  # a look at the disk still on its way is waited for, and counts
        watch.raise_if_stopped()
    except Stopped as stop:
        return _failed(result, inst, lab, stop.reason, started)
    except PortlabError as exc:
        if watch.reason:  # the watch stopped it (removing the instance made this fail)
            return _failed(result, inst, lab, watch.reason, started)
        broke = broken(inst, {f.entry.node for f in files})
        if broke:
            return _failed(result, inst, lab, broke, started)
        if isinstance(exc, RuntimeProblem):
            result.status, result.message = Status.ERROR, f"grading could not run: {exc.message}"
            result.checks = _unjudged(inst, lab, result.message)
            result.seconds = time.monotonic() - started
            return result
        raise
    finally:
        watch.stop()
    empty = all(is_empty(item.content) for item in files)
    for r in report.results:
        earned = lab.points[r.id] if r.passed and not empty else 0
        first = next((p for p in r.probes if not p.passed), None)
        message = ""
        if first is not None:
            message = (f"could not observe: {first.why}" if r.errored else
                       f"{first.got}" + (f"; {first.why}" if first.why else ""))
        if empty and r.passed:
            message = "passes as the lab does untouched; an empty submission earns nothing"
        result.checks.append(CheckGrade(r.id, r.title, r.outcome, earned, lab.points[r.id],
                                        r.probes, r.hint, message))
    result.score = sum(c.points for c in result.checks)
    if empty:
        result.message = "the submission is empty: its files hold nothing but comments"
    if report.errored_ids():
        result.status = Status.ERROR
        result.message = ("grading could not run: portlab could not observe "
                          + ", ".join(report.errored_ids()))
    elif result.score >= lab.pass_mark and not empty:
        result.status = Status.PASSED
    result.seconds = time.monotonic() - started
    return result


def _unjudged(inst: Instance, lab: Lab, reason: str) -> list[CheckGrade]:
    """Every check of the lab, none judged, each saying why: what a grade that stopped
    before its checks still shows, check by check (CI formats have a line per check)."""
    binding = inst.binding(lab)
    return [CheckGrade(c.id, binding.render(("checks", i, "title"), c.title), None, 0,
                       lab.points[c.id], message=f"not judged: {reason}")
            for i, c in enumerate(lab.checks)]


def _failed(result: Grade, inst: Instance, lab: Lab, reason: str, started: float) -> Grade:
    """The grade fails outright: no check earns points, each says why."""
    result.status, result.message, result.score = Status.FAILED, reason, 0
    result.checks = _unjudged(inst, lab, reason)
    result.seconds = time.monotonic() - started
    return result
