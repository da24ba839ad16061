"""Shared test setup.

Every test session works in its own portlab scope ($PORTLAB_SCOPE), so it
never sees or removes labs of the user or of another session on the same
Docker daemon, and `down --all` in a test removes only the session's own.
Its learner's record (the solved labs, $XDG_STATE_HOME) is a folder of its
own too, removed at the end: a test's passing `portlab check` never marks a
lab solved for the user who ran the tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

SESSION_SCOPE = f"pytest-{os.getpid()}"[:20]


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PORTLAB_SCOPE"] = SESSION_SCOPE
    state = tempfile.mkdtemp(prefix="portlab-test-state-")
    os.environ["XDG_STATE_HOME"] = state
    config.add_cleanup(lambda: shutil.rmtree(state, ignore_errors=True))
    os.environ.setdefault("NO_COLOR", "1")  # no-color.org: no styles, whatever the output


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """With workers (pytest-xdist, `-n`): every Docker integration test on one worker, one
    after another in their order (they share the daemon, its preferred subnets and the
    session's fixtures; the lab pool runs beside them: tests/integration/labpool.py), and
    every other test on whichever worker is free."""
    from xdist.scheduler import LoadScopeScheduling

    class DockerApart(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "docker" if nodeid.startswith("tests/integration/") else nodeid

    return DockerApart(config, log)
