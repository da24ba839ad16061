"""Shared test setup.

Every test session works in its own portlab scope ($PORTLAB_SCOPE), so it
never sees or removes labs of the user or of another session on the same
Docker daemon, and `down --all` in a test removes only the session's own.
"""

from __future__ import annotations

import os

import pytest

SESSION_SCOPE = f"pytest-{os.getpid()}"[:20]


def pytest_configure(config: pytest.Config) -> None:
    os.environ["PORTLAB_SCOPE"] = SESSION_SCOPE
    os.environ.setdefault("PORTLAB_NO_COLOR", "1")
