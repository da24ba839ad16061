"""A whole class at once: one subfolder per student (named by their ID), graded side by side.

Grades run with bounded parallelism. Each student's variant pins its own
subnets, so two grades whose subnets overlap never run at the same time (the
next one that fits starts instead). A submission that breaks its own lab
affects no other: each grade has instances, limits and clean-up of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from portlab.errors import PortlabError, RuntimeProblem, UsageError, printable
from portlab.grading.result import Grade
from portlab.grading.session import grade, not_run
from portlab.grading.watch import Settings
from portlab.model.variant import student_id, variant_lab
from portlab.progress import Progress, Quiet


@dataclass
class Entry:
    student: str
    folder: Path
    subnets: list[IPv4Network] = field(default_factory=list)
    grade: Grade | None = None
    problem: str = ""  # why it was not graded (an unusable submission), or could not be


@dataclass
class Batch:
    lab: str
    entries: list[Entry]
    seconds: float = 0.0


def default_parallel() -> int:
    return max(2, 2 * (os.cpu_count() or 1))


def entries(name: str, root: Path, salt: str) -> list[Entry]:
    if not root.is_dir():
        raise UsageError(f"{printable(str(root))} is not a folder of submissions")
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_id(folder.name)
        _, variant = variant_lab(name, student, salt)
        out.append(Entry(student, folder, list(variant.subnets.values())))
    if not out:
        raise UsageError(f"{printable(str(root))} has no submission folders (one per student, "
                         "named by their ID)")
    return out


def grade_all(name: str, root: Path, *, salt: str = "", parallel: int | None = None,
              settings: Settings | None = None, progress: Progress | None = None,
              on_done: Callable[[Entry], None] | None = None) -> Batch:
    import time

    progress = progress or Quiet()
    todo = entries(name, root, salt)
    workers = max(1, min(parallel or default_parallel(), len(todo)))
    lock = threading.Condition()
    pending = list(todo)
    busy: list[list[IPv4Network]] = []
    done = 0
    start = time.monotonic()

    def fits(entry: Entry) -> bool:
        return not any(a.overlaps(b) for used in busy for a in used for b in entry.subnets)

    def take() -> Entry | None:
        with lock:
            while pending:
                ready = next((e for e in pending if fits(e)), None)
                if ready is not None:
                    pending.remove(ready)
                    busy.append(ready.subnets)
                    return ready
                lock.wait()
            return None

    def work() -> None:
        nonlocal done
        while (entry := take()) is not None:
            try:
                entry.grade = grade(name, entry.folder, entry.student, salt=salt,
                                    settings=settings)
            except RuntimeProblem as exc:  # its lab would not start: no one's fault, said
                entry.grade = not_run(name, entry.student, salt, exc.message)
            except PortlabError as exc:
                entry.problem = exc.message
            finally:
                with lock:
                    busy.remove(entry.subnets)
                    done += 1
                    lock.notify_all()
                    progress.detail(f"{done}/{len(todo)} graded ({len(busy)} running); "
                                    f"{entry.student}: {_said(entry)}")
            if on_done is not None:
                on_done(entry)

    with progress.phase(f"grading {len(todo)} submissions to lab '{name}', {workers} at a "
                        "time"), ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()
    return Batch(name, todo, time.monotonic() - start)


def _said(entry: Entry) -> str:
    if entry.grade is None:
        return f"not graded ({entry.problem})"
    g = entry.grade
    return f"{g.score}/{g.max_score} {g.status.value}" if g.status.value != "error" else \
        f"could not be graded ({g.message})"
