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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from portlab import runtime
from portlab.backend.base import ExecResult, FileCopy, Stream
from portlab.errors import PortlabError, RuntimeProblem
from portlab.grading import submission as sub
from portlab.grading.shape import shape
from portlab.grading.watch import Settings, Stopped, Watch
from portlab.model.types import Lab
from portlab.model.variant import Variant, variant_lab
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import run_checks
from portlab.progress import Progress, Quiet
from portlab.runtime import Instance

WORK = "/run/portlab/submission"  # where a submitted script is put on its node
OUTPUT_KEPT = 2000  # characters of each file's output kept for feedback


class Status(str, Enum):
    PASSED = "passed"  # the pass mark was met
    FAILED = "failed"  # it was not (the submission's doing)
    ERROR = "error"  # grading could not run: no score, never blamed on the student


@dataclass
class FileRun:
    """What applying one submitted file did."""

    file: str
    node: str
    command: str
    exit_code: int | None  # None: it did not end by itself (stopped at its time limit)
    output: str
    seconds: float
    timed_out: bool = False


@dataclass
class CheckGrade:
    id: str
    title: str
    outcome: Outcome | None  # None: not run (the grade failed before the checks)
    points: int  # earned
    max_points: int
    probes: list[ProbeResult] = field(default_factory=list)
    hint: str = ""
    message: str = ""  # why, in one line, for reports that have room for one

    @property
    def credited(self) -> bool:
        """It passed and earned all its points: what CI formats show as passed. A check that
        holds on an untouched lab earns nothing for an empty submission, and is a failure
        there, never a green mark beside 0 points."""
        return self.outcome is Outcome.PASS and self.points == self.max_points


@dataclass
class Grade:
    lab: str
    student: str
    variant: Variant
    status: Status
    score: int
    max_score: int
    pass_mark: int
    files: list[FileRun] = field(default_factory=list)
    checks: list[CheckGrade] = field(default_factory=list)
    message: str = ""  # the grade's own story: why it failed outright, or could not run
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


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
    instance = f"grade-{_slug(student)}-{secrets.token_hex(3)}"
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
                result.files.append(_apply(inst, lab, item, settings, watch))
            watch.look(touched)
        _healthy(inst, touched)
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
        broke = _broken(inst, {f.entry.node for f in files})
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


def is_empty(content: bytes) -> bool:
    """A file that holds nothing but blank lines and comments (a starter file, untouched)."""
    return all(not line.strip() or line.lstrip().startswith(("#", ";"))
               for line in content.decode("utf-8", "replace").splitlines())


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


def _apply(inst: Instance, lab: Lab, item: sub.Submitted, settings: Settings,
           watch: Watch) -> FileRun:
    entry = item.entry
    # The largest file any process may write is the node's own limit (Limits.file_mib, set
    # by the engine on every process of the node, RLIMIT_FSIZE): nothing to raise here.
    if entry.path is None:
        target = f"{WORK}/{entry.file.replace('/', '_')}"
        command = f"sh {target}"
        argv = ["sh", "-c", f'cd {WORK} && exec sh "$0"', target]
        mode = entry.mode
    else:
        target = entry.path
        command = inst.binding(lab).render(("submission", lab.submission.index(entry), "run"),
                                           entry.run)
        argv = ["sh", "-c", command] if command else []
        mode = entry.mode
    inst.copy(entry.node, {target: FileCopy(item.content, mode)})
    if not argv:
        return FileRun(entry.file, entry.node, "", 0, "", 0.0)
    limit = entry.timeout
    start = time.monotonic()
    # `timeout` stops the command and everything in its process group on the node; the
    # wait here is the backstop (a submission that broke `timeout` itself).
    run = ["timeout", "-k", "2", f"{limit:g}", *argv]
    watch.running(True)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(inst.exec, entry.node, run)
        try:
            got = future.result(timeout=limit + 10)
        except FutureTimeout:
            watch.stop_grade(f"{entry.file} did not finish within {limit:g} s on {entry.node}")
            raise Stopped(watch.reason) from None
        finally:
            watch.running(False)
    seconds = time.monotonic() - start
    output = (got.stdout + got.stderr)[-OUTPUT_KEPT:]
    if got.exit_code in (124, 137) and seconds >= limit:
        raise Stopped(f"{entry.file} did not finish within {limit:g} s on {entry.node} (it was "
                      "stopped)")
    return FileRun(entry.file, entry.node, command, got.exit_code, output, seconds)


def _broken(inst: Instance, touched: set[str]) -> str:
    """What the submission stopped, in words, or "" when its nodes and graders still run."""
    try:
        info = inst.backend.instances().get(inst.name)
    except PortlabError:
        return ""
    if info is None:
        return ""
    for node in sorted(touched):
        now = info.nodes.get(node)
        if now is None or not now.running:
            why = now.why_not_running() if now is not None else "it is gone"
            return f"the submission stopped node {node} ({why})"
        grader = info.graders.get(node)
        if grader is not None and not grader.running:
            return f"the submission stopped the grader's probes beside {node}"
    return ""


def _healthy(inst: Instance, touched: set[str]) -> None:
    broke = _broken(inst, touched)
    if broke:
        raise Stopped(broke)
    inst.info = inst.backend.instances().get(inst.name) or inst.info  # graders' state now
