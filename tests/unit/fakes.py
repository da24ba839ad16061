"""Stand-ins for the backend seam, for probe tests without Docker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from portlab.backend.base import ExecResult, Stream


class FakeNodes:
    """A NodeRunner whose commands are answered by `answer(node, argv)`."""

    def __init__(self, answer: Callable[[str, list[str]], ExecResult]) -> None:
        self.answer = answer

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        return self.answer(node, list(argv))

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        raise AssertionError("no probe streams")
