"""Child processes (Compose, mmdebstrap) that must not outlive portlab.

They run in their own process group, so a Ctrl-C reaches portlab alone and
portlab stops them in order. If portlab itself is killed outright (SIGKILL,
the OOM killer), nothing of it runs any more: on Linux the kernel then
kills the child too (PR_SET_PDEATHSIG), so no orphaned `docker compose up`
keeps creating containers after the next `portlab up` or `down` cleaned up.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1

try:  # loaded here, in the parent: the child only makes the one call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def preexec() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: the child dies with portlab (Linux only)."""
    return _die_with_parent if _prctl is not None else None
