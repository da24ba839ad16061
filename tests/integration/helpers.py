"""Small helpers for integration tests: run the real CLI, and look at Docker by labels."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from portlab import docker_api


def portlab(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `portlab ARGS` as a user would (a new process), capture its output."""
    proc = subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def labelled(instance: str) -> dict[str, list[Any]]:
    """Containers and networks of this test scope that carry the instance's label."""
    c = docker_api.client()
    filters = docker_api.scope_filter(**{docker_api.LABEL_INSTANCE: instance})
    return {
        "containers": c.containers.list(all=True, sparse=True, filters=filters),
        "networks": c.networks.list(filters=filters),
    }
