"""What `portlab doctor` found: one Finding per check, and the report's status and exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from portlab.errors import ExitCode


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # labs run, but something is slower, weaker or surprising
    FAIL = "fail"  # labs (or some of them) cannot run

    @property
    def rank(self) -> int:
        return {"ok": 0, "warn": 1, "fail": 2}[self.value]


Figure = str | int | float | bool | None | list[str]


@dataclass(frozen=True)
class Finding:
    """One check's result. `id` is stable (kebab-case); `what` says what was found, with its
    figures; `fix` (for warn and fail) is a command or a config line; `figures` the same
    numbers for machines."""

    id: str
    status: Status
    what: str
    fix: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status.value, "what": self.what,
                "fix": self.fix or None, "figures": dict(self.figures)}


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def status(self) -> Status:
        worst = max((f.status for f in self.findings), key=lambda s: s.rank, default=Status.OK)
        return worst

    @property
    def exit_code(self) -> int:
        """0 all is well, 1 warnings, 3 labs cannot run."""
        return {Status.OK: int(ExitCode.OK), Status.WARN: int(ExitCode.CHECKS_FAILED),
                Status.FAIL: int(ExitCode.RUNTIME)}[self.status]

    def get(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def as_json(self) -> dict[str, object]:
        """The object `portlab doctor --json` prints (docs/doctor-json.md)."""
        return {"version": 1, "status": self.status.value, "exit_code": self.exit_code,
                "findings": [f.as_json() for f in self.findings]}
