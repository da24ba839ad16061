"""The backend: the only code that talks to a container engine (see portlab.backend.base).

`get()` returns the one in use: Docker with Compose, today the only one
($PORTLAB_BACKEND=docker). It is imported when first asked for, so that
commands that never start anything (`portlab list`, `show`) work on a
machine without the engine's SDK or daemon.
"""

from __future__ import annotations

import os
import threading

from portlab.backend.base import Backend
from portlab.errors import UsageError, printable

BACKENDS = ("docker",)
# What `portlab render --format` prints: the Docker backend's Compose file, or Kubernetes
# manifests (portlab.backend.kubernetes: rendered only; no backend runs them yet).
RENDER_FORMATS = ("compose", "kubernetes")

_backend: Backend | None = None
_lock = threading.Lock()


def get() -> Backend:
    """The backend named by $PORTLAB_BACKEND (default: docker)."""
    global _backend
    with _lock:
        if _backend is None:
            name = os.environ.get("PORTLAB_BACKEND", "") or "docker"
            if name not in BACKENDS:
                raise UsageError(f"PORTLAB_BACKEND='{printable(name)}' is not a backend "
                                 f"portlab has. Backends: {', '.join(BACKENDS)}")
            from portlab.backend.docker import DockerBackend

            _backend = DockerBackend()
        return _backend
