"""A grade, as data: its status, each check's points, what applying each file did.

What the views format (table, JSON, JUnit, Classroom, Gradescope, CSV) and
what `portlab.grading.session` fills in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from portlab.model.variant import Variant
from portlab.probes.base import Outcome, ProbeResult


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
