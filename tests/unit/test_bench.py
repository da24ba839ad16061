"""The benchmark still runs against the code it measures (a rename once broke its imports
unseen): it loads, finds the Compose versions it compares with, and says how to use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_loads_and_explains_itself() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--help"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--concurrent" in proc.stdout and "--grade" in proc.stdout
