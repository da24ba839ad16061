"""The errors portlab raises on purpose, and the exit code each one maps to.

Everything the user can cause (a typo in a lab file, an unknown node, Docker
not running) is a PortlabError with a message written for a person. The CLI
turns it into one line on stderr and an exit code; a traceback only appears
with --debug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECKS_FAILED = 1
    USAGE = 2  # bad arguments, unknown lab or node, invalid lab file, lab state conflicts
    RUNTIME = 3  # Docker, Compose or image problems; a check that could not observe
    INTERNAL = 4  # a bug in portlab: reported in one line, traceback with --debug
    INTERRUPTED = 130


class PortlabError(Exception):
    """An error with a message meant for the user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(PortlabError):
    """The user asked for something that does not exist or cannot be done now."""


def printable(text: str) -> str:
    """`text` with every character that is not printable (line breaks, NUL, terminal escapes,
    bidi controls) written as a Python escape, so a message stays one honest line."""
    return _escaped(text, keep="")


def untrusted(text: str) -> str:
    """Text that came from a node (a submission's output, a server's answer, a banner, a trace
    line), made safe to show: every character that is not printable, but for line breaks and
    tabs, is written as an escape (an ESC as the four characters \\x1b), so a terminal never
    interprets it (no cursor moves, colours, hidden text or window titles), and an XML file
    never holds it. The one sanitizer for such text; JSON escapes it by itself."""
    return _escaped(text, keep="\n\t")


def _escaped(text: str, keep: str) -> str:
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep
                   else ch.encode("unicode_escape").decode("ascii") for ch in text)


class LabError(PortlabError):
    """A lab file is invalid. Names the file, the line and the key."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None) -> None:
        where = f"{file}:{line}" if line else file
        text = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(printable(text))  # a key or value from the file may hold anything
        self.file = file
        self.key = key
        self.line = line
        self.detail = message


class RuntimeProblem(PortlabError):
    """Docker, Compose or the image could not do what was needed."""

    exit_code = ExitCode.RUNTIME


class BackendUnreachable(RuntimeProblem):
    """The engine (Docker) does not answer: not running, not ours to use, or the connection
    was lost.

    Nothing more can be learnt from it then, so code that would ask it why something
    failed (e.g. which node stopped) lets this one through unchanged. `reason` is the
    message without what was being done, so `during` can say it of other work.
    """

    def __init__(self, message: str, *, hint: str | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason or message

    def during(self, what: str) -> BackendUnreachable:
        """The same problem, said of `what` (the work it cut short)."""
        return BackendUnreachable(f"{what}: {self.reason}", hint=self.hint, reason=self.reason)
