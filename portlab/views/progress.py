"""Progress for long work (image builds, starting labs), shown on a terminal or in a log.

On a terminal the current detail is redrawn in place on one line with the
elapsed time; in a log (CI, pipes) each step and detail is printed once, so
nothing is lost and nothing floods.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class TerminalProgress:
    """portlab.progress.Progress written to a stream (stderr)."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False,
                 verbose: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._phase: str | None = None
        self._start = 0.0
        self._last_detail = ""
        self._drawn = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self._write("\r\033[K")
            self._drawn = False

    def note(self, text: str) -> None:
        """A line that stays."""
        if self.quiet:
            return
        with self._lock:
            self._clear()
            self._write(text + "\n")

    @contextmanager
    def phase(self, title: str) -> Iterator[TerminalProgress]:
        """A step of work: prints its title, then 'done in N.Ns' (or 'failed')."""
        self._phase = title
        self._start = time.monotonic()
        self._last_detail = ""
        if not self.quiet:
            with self._lock:
                self._clear()
                if self.tty:
                    self._draw(f"{title} ...")
                else:
                    self._write(f"{title} ...\n")
        ok = False
        try:
            yield self
            ok = True
        finally:
            elapsed = time.monotonic() - self._start
            if not self.quiet:
                with self._lock:
                    self._clear()
                    status = f"done in {elapsed:.1f}s" if ok else f"stopped after {elapsed:.1f}s"
                    self._write(f"{title}: {status}\n")
            self._phase = None

    def detail(self, text: str) -> None:
        """What is happening inside the current phase right now."""
        text = text.strip()
        if self.quiet or not text or text == self._last_detail:
            return
        self._last_detail = text
        with self._lock:
            if self.tty:
                elapsed = time.monotonic() - self._start
                self._draw(f"{self._phase or ''} [{elapsed:4.0f}s] {text}")
            else:
                self._write(f"  {text}\n")

    def output(self, text: str) -> None:
        """A tool's raw output: printed as it is with --verbose, else left to the log."""
        if self.quiet or not self.verbose or not text.strip():
            return
        with self._lock:
            self._clear()
            self._write(f"    | {text.rstrip()}\n")

    def _draw(self, line: str) -> None:
        width = 100
        self._write("\r\033[K" + line[:width])
        self._drawn = True

