"""A learner's path: which labs this user has solved, and which lab comes next.

The record is a small JSON file in the user's XDG state directory
(`$XDG_STATE_HOME/portlab/progress.json`, else `~/.local/state/portlab/`),
not labels on containers: a solved lab stays solved after `portlab down`
removes every container it had, it belongs to the user rather than to one
Docker daemon or scope, and reading it needs no engine (`portlab list` and
`portlab next` work without Docker). `portlab check` records a lab when every
one of its checks passed. A file that is missing, unreadable or not what
portlab wrote is treated as empty and written anew: never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from portlab.model.types import Lab

VERSION = 1


def state_file() -> Path:
    root = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(root) / "portlab" / "progress.json"


def solved() -> dict[str, dict[str, object]]:
    """Lab name -> when it was solved (and on which instance); {} for a missing or broken
    file."""
    try:
        data = json.loads(state_file().read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("solved"), dict):
        return {}
    return {str(k): v for k, v in data["solved"].items() if isinstance(v, dict)}


def record_solved(lab: str, instance: str) -> Path | None:
    """Remember that `lab` was solved now. Returns the file, or None when it could not be
    written (a read-only home): the check's verdict stands either way."""
    entries = solved()
    first = entries.get(lab, {}).get("first") or _now()
    entries[lab] = {"first": first, "last": _now(), "instance": instance}
    path = state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".progress.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({"version": VERSION, "solved": entries}, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)  # whole or not at all, even if two checks end at once
    except OSError:
        return None
    return path


def next_lab(labs: list[Lab], done: dict[str, Any]) -> Lab | None:
    """The first lab of the path (labs in path order) not yet solved; None when all are."""
    return next((lab for lab in labs if lab.name not in done), None)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
