"""What long work reports as it goes (image builds, starting labs): the interface only.

The backend and the runtime report through this protocol; how it is shown
(a line redrawn on a terminal, one line per step in a log) is a view's job:
`portlab.views.progress.TerminalProgress`. `Quiet` shows nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Progress(Protocol):
    def note(self, text: str) -> None:
        """A line that stays."""

    def phase(self, title: str) -> AbstractContextManager[object]:
        """A step of work; says when it is done (or stopped) and how long it took."""

    def detail(self, text: str) -> None:
        """What is happening inside the current phase right now, in words."""

    def output(self, text: str) -> None:
        """One line of a tool's raw output (a build log): shown only when asked for
        (--verbose); the work keeps it in its log file anyway."""


class Quiet:
    """Progress that shows nothing."""

    def note(self, text: str) -> None:
        pass

    @contextmanager
    def _nothing(self) -> Iterator[object]:
        yield self

    def phase(self, title: str) -> AbstractContextManager[object]:
        return self._nothing()

    def detail(self, text: str) -> None:
        pass

    def output(self, text: str) -> None:
        pass
