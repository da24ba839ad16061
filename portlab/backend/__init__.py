"""The backend: the only code that talks to a container engine (see portlab.backend.base).

`get()` returns the one in use, named by $PORTLAB_BACKEND (default: docker).
Backends are found by name, as probe kinds are (portlab.model.probekinds):
portlab's own in BUILTIN, and those of installed packages as entry points in
the group ENTRY_POINTS, each naming a class (or any callable) that takes no
arguments and returns a Backend. A backend is a folder:
portlab/backend/docker is Docker with Compose; docs/architecture.md, "Add a
backend", says what a new one writes. A backend is imported when first asked
for, so that commands that never start anything (`portlab list`, `show`) work
on a machine without its SDK or daemon.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from importlib.metadata import entry_points

from portlab.backend.base import Backend
from portlab.errors import RuntimeProblem, UsageError, printable

BUILTIN = {"docker": "portlab.backend.docker:DockerBackend"}
ENTRY_POINTS = "portlab.backends"
DEFAULT = "docker"
# What `portlab render --format` prints: the Docker backend's Compose file, or Kubernetes
# manifests (portlab.backend.kubernetes: rendered only; no backend runs them yet).
RENDER_FORMATS = ("compose", "kubernetes")

_backend: Backend | None = None
_lock = threading.Lock()


def _offered() -> dict[str, str]:
    """Backend name -> where it is ("module:attribute"): portlab's own, then packages'."""
    found = dict(BUILTIN)
    for entry in entry_points(group=ENTRY_POINTS):
        found.setdefault(entry.name, entry.value)
    return found


def names() -> list[str]:
    """The backends that can be named in $PORTLAB_BACKEND."""
    return sorted(_offered())


def _load(name: str, where: str) -> Callable[[], Backend]:
    module, _, attribute = where.partition(":")
    try:
        found: Callable[[], Backend] = getattr(importlib.import_module(module), attribute)
    except Exception as exc:  # a package's own fault, whatever it is
        raise RuntimeProblem(
            f"the backend '{printable(name)}' ({printable(where)}) did not load: "
            f"{type(exc).__name__}: {printable(str(exc))[:300]}",
            hint="reinstall the package that offers it, or choose another backend with "
                 "$PORTLAB_BACKEND") from None
    return found


def get() -> Backend:
    """The backend named by $PORTLAB_BACKEND (default: docker), made once."""
    global _backend
    with _lock:
        if _backend is None:
            name = chosen()
            offered = _offered()
            if name not in offered:
                raise UsageError(f"PORTLAB_BACKEND='{printable(name)}' is not a backend "
                                 f"portlab has. Backends: {', '.join(sorted(offered))}")
            _backend = _load(name, offered[name])()
        return _backend


def chosen() -> str:
    """The backend's name as $PORTLAB_BACKEND gives it (not checked, nothing loaded)."""
    return os.environ.get("PORTLAB_BACKEND", "") or DEFAULT


def engine_checks() -> dict[str, str]:
    """The doctor's checks about the chosen backend's engine alone (its ENGINE_CHECKS), read
    from its class: no engine is asked. Empty if it cannot be loaded."""
    offered = _offered()
    name = chosen()
    if name not in offered:
        return {}
    try:
        found = _load(name, offered[name])
    except RuntimeProblem:
        return {}
    return dict(getattr(found, "ENGINE_CHECKS", {}))


def forget() -> None:
    """Make the backend afresh on the next get() (tests; another $PORTLAB_BACKEND)."""
    global _backend
    with _lock:
        _backend = None
