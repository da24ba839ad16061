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
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from portlab import runtime
from portlab.backend.base import ExecResult, FileCopy, NodeInfo, Stream
from portlab.errors import PortlabError, RuntimeProblem
from portlab.grading import submission as sub
from portlab.model import catalog
from portlab.model.plan import Limits
from portlab.model.types import Lab
from portlab.model.variant import Variant, derive
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import run_checks
from portlab.progress import Progress, Quiet
from portlab.runtime import Instance, Shape

WORK = "/run/portlab/submission"  # where a submitted script is put on its node
OUTPUT_KEPT = 2000  # characters of each file's output kept for feedback
LOOK_APART = 0.2  # seconds between the looks at a node after the submission ran
CROWDED = 64  # processes on a node (as its engine counts them) that call for a few more looks
LOOK_MORE = 10  # how many more: 2 s in all
DISK_AFTER = 1.0  # a file's command has run this long: look at the disk ...
DISK_BUSY = 1.5  # ... this often while it runs,
DISK_IDLE = 5.0  # and this often otherwise


class Status(str, Enum):
    PASSED = "passed"  # the pass mark was met
    FAILED = "failed"  # it was not (the submission's doing)
    ERROR = "error"  # grading could not run: no score, never blamed on the student


@dataclass(frozen=True)
class Settings:
    limits: Limits = field(default_factory=Limits)
    time_limit: float = 300.0  # seconds for the whole grade
    disk_mib: int = 256  # what a submission may write to the disk of one node
    watch_every: float = 0.25  # seconds between the watch's looks at the clock


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


class Stopped(Exception):
    """The grade was stopped by one of its limits; `reason` says which, for the student."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def variant_lab(name: str, student: str, salt: str = "") -> tuple[Lab, Variant]:
    """The lab of `student`'s variant (its params applied), and the variant."""
    base = catalog.find(name)
    lab = catalog.find(name, derive(base, student, salt).params)
    return lab, derive(lab, student, salt)


def probed_nodes(lab: Lab) -> set[str]:
    """The nodes probes run on: their `from`, and a capture's `at`."""
    found: set[str] = set()
    for check in lab.checks:
        for probe in check.probes:
            found.add(probe.source)
            if isinstance(probe.options.get("at"), str):
                found.add(str(probe.options["at"]))
    return found


def shape(lab: Lab, variant: Variant, settings: Settings | None = None,
          graders: bool = False) -> Shape:
    """The instance a grade (or `up --student`) starts: the variant's subnets and keys; for a
    grade, limits, and a grader beside each node the submission runs on and a probe runs on."""
    probed = probed_nodes(lab)
    touched = tuple(n for n in dict.fromkeys(f.node for f in lab.submission)
                    if n in probed) if graders else ()
    return Shape(student=variant.student, subnets=dict(variant.subnets),
                 key_seed=variant.key_seed,
                 limits=settings.limits if settings is not None else None, graders=touched)


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
    inst = runtime.up(lab, instance, progress, shape=shape(lab, variant, settings, True))
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


def _failed(result: Grade, inst: Instance, lab: Lab, reason: str, started: float) -> Grade:
    """The grade fails outright: no check earns points, each says why."""
    result.status, result.message, result.score = Status.FAILED, reason, 0
    binding = inst.binding(lab)
    result.checks = [CheckGrade(c.id, binding.render(("checks", i, "title"), c.title), None, 0,
                                lab.points[c.id], message=f"not judged: {reason}")
                     for i, c in enumerate(lab.checks)]
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
        except Late:
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


class Watch:
    """Holds a grade to its time limit and each touched node to its disk cap, in the
    background. Over a limit it removes the instance (so every command in it ends)."""

    def __init__(self, inst: Instance, nodes: list[str], settings: Settings,
                 started: float) -> None:
        self.inst = inst
        self.nodes = sorted(set(nodes))
        self.settings = settings
        self.deadline = started + settings.time_limit
        self.reason = ""
        self._busy_since: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking; a look at the disk on its way (Docker walks the node's files, which
        takes seconds when they are many) is waited for, and its verdict counts."""
        self._done.set()
        self._thread.join(timeout=60)

    def stop_grade(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            try:
                self.inst.backend.remove(self.inst.name, Quiet())
            except PortlabError:
                pass

    def raise_if_stopped(self) -> None:
        if self.reason:
            raise Stopped(self.reason)

    def disk(self, nodes: set[str]) -> None:
        """Look at the disk of each node now (side by side), and stop the grade if one is over
        its cap."""
        cap = self.settings.disk_mib * 2**20
        names = sorted(nodes)
        with ThreadPoolExecutor(max(1, len(names))) as pool:
            reasons = [r for r in pool.map(lambda n: self._over(n, cap), names) if r]
        if reasons:
            self.stop_grade(reasons[0])
            raise Stopped(reasons[0])

    def look(self, nodes: set[str], times: int = 1) -> None:
        """Look at once (not only in the background) whether a node is over a limit, `times`
        times a moment apart (what a submission left running may still be growing)."""
        k = 0
        while True:
            self.raise_if_stopped()
            crowded = False
            for name in sorted(nodes):
                reason, count = self._forked(name)
                if reason:
                    self.stop_grade(reason)
                    raise Stopped(reason)
                crowded = crowded or count >= CROWDED
            k += 1
            # Far more processes than a node runs, not yet at the limit: something may still
            # be forking (on a busy machine a fork bomb grows slowly), so look again.
            if k >= times + (LOOK_MORE if crowded else 0):
                return
            time.sleep(LOOK_APART)

    def running(self, busy: bool) -> None:
        """A submitted file's command started (busy) or ended: while one runs long, its
        nodes' disks are looked at often."""
        self._busy_since = time.monotonic() if busy else None

    def _run(self) -> None:
        # Docker computes a container's disk use by walking its whole file system (about
        # 0.4 CPU-seconds each time here): looked at while a file has run for more than
        # DISK_AFTER seconds, then every DISK_BUSY; otherwise every DISK_IDLE. A grade that
        # takes its usual few seconds pays nothing for it.
        cap = self.settings.disk_mib * 2**20
        last = time.monotonic()
        while not self._done.wait(self.settings.watch_every):
            now = time.monotonic()
            if now > self.deadline:
                self.stop_grade(f"the grade took longer than {self.settings.time_limit:g} s")
                return
            since = self._busy_since
            due = DISK_BUSY if since is not None and now - since > DISK_AFTER else DISK_IDLE
            if now - last < due:
                continue
            last = now
            for name in self.nodes:
                reason = self._over(name, cap)
                if reason:
                    self.stop_grade(reason)
                    return

    def _over(self, name: str, cap: int) -> str:
        """Why the node is over a limit, or ""."""
        node: NodeInfo | None = self.inst.info.nodes.get(name)
        if node is None:
            return ""
        try:
            used = self.inst.backend.written(node)
        except PortlabError:
            return ""  # the node is gone: the grade says so itself
        if used > cap:
            return (f"the submission wrote more than {self.settings.disk_mib} MiB to the disk "
                    f"of {name} ({used // 2**20} MiB)")
        return ""  # processes: `look` counts them after each step (an exec costs the node)

    def _forked(self, name: str) -> tuple[str, int]:
        """Why the node is running processes without end (a fork bomb, hundreds of busy
        loops), or "", and how many it runs. Asked of the engine (`backend.processes`), never
        of the node: a node busy with hundreds of processes on its CPU share would answer a
        command run in it only after minutes."""
        node = self.inst.info.nodes.get(name)
        if node is None:
            return "", 0
        most = self.settings.limits.pids
        try:
            count = self.inst.backend.processes(node)
        except PortlabError:
            return "", 0  # the node is gone: the grade says so itself
        if count >= most // 2:
            return (f"the submission started processes without end on {name} ({count} of its "
                    f"limit of {most})"), count
        return "", count
