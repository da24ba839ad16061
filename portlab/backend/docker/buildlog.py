"""The image build's log: everything the build tools printed, in one file that errors name.

The progress a newcomer sees is a few steps in words; the raw output
(mmdebstrap's, Docker's) goes here in full, and to the terminal only with
`--verbose`. The file is the last build's, in portlab's cache folder
(`$XDG_CACHE_HOME/portlab`, else `~/.cache/portlab`, else the temp folder).
The same folder keeps how long the last build's steps took, which is the
estimate the next build shows.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TextIO

DEFAULT_ESTIMATES = {"base": 55.0, "node": 3.0}  # seconds, on a 2-core machine


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(root) / "portlab"


class BuildLog:
    """An open build log. Writing never fails the build: a log that cannot be written is
    replaced by one in the temp folder, or by nothing."""

    def __init__(self, name: str = "image-build.log") -> None:
        self._file: TextIO | None = None
        self.path = cache_dir() / name
        for folder in (cache_dir(), Path(tempfile.gettempdir())):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                self.path = folder / name
                self._file = self.path.open("w", encoding="utf-8")
                break
            except OSError:
                continue

    def write(self, line: str) -> None:
        if self._file is not None:
            try:
                self._file.write(f"{time.strftime('%H:%M:%S')} {line}\n")
                self._file.flush()
            except OSError:
                pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> BuildLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def estimate(step: str) -> float:
    """How long `step` ("base" or "node") took last time here, else a default."""
    try:
        seconds = json.loads((cache_dir() / "image-build.json").read_text())[step]
        return float(seconds)
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_ESTIMATES[step]


def remember(step: str, seconds: float) -> None:
    path = cache_dir() / "image-build.json"
    try:
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict):
            known = {}
        known[step] = round(seconds, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known))
    except OSError:
        pass


def about(seconds: float) -> str:
    """An estimate in words: 'about 50 s', 'about 2 min'."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    return f"about {round(seconds / 60):.0f} min"
