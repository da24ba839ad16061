"""Every shipped lab's cases, run by `portlab test --all` in the background of the session.

A lab case mostly waits (for its nodes, for a probe's timeout), and so do
most integration tests: run one after the other they keep the machine half
idle. So the session starts the cases of every lab at its beginning, in a
process of its own, in a scope of its own (its instances are invisible to
every other test, and its `down --all` touches nothing else), one case per
core beside the tests that run meanwhile; test_labs.py, ordered last among
the integration tests, reads the results. The cases, the labs and what each
must show are exactly those `portlab test` runs: nothing is dropped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

SCOPE = f"labs-{os.getpid()}"[:20]  # beside the session's own (tests/conftest.py)
# one case per core: a case mostly waits (for its nodes, for a probe to time out), so two
# beside the other tests keep a 2-core machine busy, not overloaded (measured: every lab as
# declared with --jobs 2 while three other labs ran their own checks)
JOBS = max(1, os.cpu_count() or 1)
PATIENCE = 3600.0  # seconds: a guard against a hang, not a timing check


class LabPool:
    def __init__(self) -> None:
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.env = {**os.environ, "PORTLAB_SCOPE": SCOPE}
        self.proc: subprocess.Popen[bytes] | None = None
        self._results: dict[str, dict[str, Any]] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portlab", "test", "--all", "--json", "--jobs", str(JOBS)],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, env=self.env)

    def results(self) -> dict[str, dict[str, Any]]:
        """Each lab's `portlab test --json` object, by lab name (waits for the pool)."""
        if self._results is None:
            assert self.proc is not None
            code = self.proc.wait(timeout=PATIENCE)
            self.out.seek(0)
            self.err.seek(0)
            said = self.err.read().decode(errors="replace")[-3000:]
            try:
                data = json.loads(self.out.read())
            except ValueError:
                raise AssertionError(f"`portlab test --all` printed no result (exit {code}): "
                                     f"{said}") from None
            assert code in (0, 1, 3), (code, said)
            self._results = {lab["lab"]: lab for lab in data["labs"]}
        return self._results

    def stop(self) -> None:
        """The pool ends (interrupted if it still runs: `portlab test` then removes its
        instances) and nothing of its scope is left."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run([sys.executable, "-m", "portlab", "down", "--all"], env=self.env,
                       capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
        self.out.close()
        self.err.close()


def describe(lab: dict[str, Any]) -> str:
    """What did not go as declared, one line per case."""
    lines = [f"lab {lab['lab']}: {'ok' if lab['ok'] else 'NOT as declared'}"]
    for case in lab["cases"]:
        if not case["ok"]:
            lines.append(f"  {case['case']}: declared {case['declared']}, failed "
                         f"{case['failed']}, errors {case['errors']}, problem {case['problem']}")
    for mutant in lab["mutants"]:
        if not mutant["ok"]:
            lines.append(f"  mutant {mutant['mutant']}: failed {mutant['failed']}, errors "
                         f"{mutant['errors']}, problem {mutant['problem']} (survives: "
                         f"{mutant['survives']})")
    if lab["unknown_survivors"]:
        lines.append(f"  survives: names no mutant of this lab: {lab['unknown_survivors']}")
    return "\n".join(lines)
