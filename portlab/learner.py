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

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from portlab.model.types import Lab

VERSION = 1
REVEAL_AFTER = 3  # a check's hint gives the solution's commands from its third failure in a row


def state_file() -> Path:
    root = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(root) / "portlab" / "progress.json"


def _load() -> dict[str, Any]:
    """The whole record; {} for a missing or broken file."""
    try:
        data = json.loads(state_file().read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _part(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    part = data.get(key)
    if not isinstance(part, dict):
        return {}
    return {str(k): v for k, v in part.items() if isinstance(v, dict)}


def _save(data: dict[str, Any]) -> Path | None:
    """Write the record whole, or not at all (two checks may end at once); None when it could
    not be written (a read-only home): a verdict stands either way."""
    path = state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".progress.", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump({**data, "version": VERSION}, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def solved() -> dict[str, dict[str, object]]:
    """Lab name -> when it was solved (and on which instance); {} for a missing or broken
    file."""
    return dict(_part(_load(), "solved"))


def record_solved(lab: str, instance: str) -> Path | None:
    """Remember that `lab` was solved now. Returns the file, or None when it could not be
    written (a read-only home): the check's verdict stands either way."""
    data = _load()
    entries = _part(data, "solved")
    first = entries.get(lab, {}).get("first") or _now()
    entries[lab] = {"first": first, "last": _now(), "instance": instance}
    return _save({**data, "solved": entries})


def count_tries(lab: str, instance: str, token: str, outcomes: dict[str, bool]) -> dict[str, int]:
    """How many times in a row each check (id -> passed now?) has failed on this instance,
    this time included; a passed check starts again from 0. An instance started afresh (a new
    token) starts from 0 too. Hints give the solution's commands only after a few tries."""
    data = _load()
    tries = _part(data, "tries")
    key = f"{lab}/{instance}"
    life = hashlib.sha256(token.encode()).hexdigest()[:16]  # the token itself stays secret
    entry = tries.get(key, {})
    old = entry.get("checks") if entry.get("life") == life else None
    counts = {str(k): v for k, v in (old or {}).items() if isinstance(v, int)}
    for check, passed in outcomes.items():
        counts[check] = 0 if passed else min(counts.get(check, 0), 1000) + 1
    tries[key] = {"life": life, "checks": counts}
    _save({**data, "tries": dict(list(tries.items())[-50:])})  # the last 50 instances
    return {check: counts[check] for check in outcomes}


def next_lab(labs: list[Lab], done: dict[str, Any]) -> Lab | None:
    """The first lab of the path (labs in path order) not yet solved; None when all are."""
    return next((lab for lab in labs if lab.name not in done), None)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
