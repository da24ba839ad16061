"""What `portlab doctor` found: one Finding per check (portlab.backend.base.Finding: a backend
makes those about its engine), and the report's status and exit code."""

from __future__ import annotations

from dataclasses import dataclass

from portlab.backend.base import Finding, Status
from portlab.errors import ExitCode


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
