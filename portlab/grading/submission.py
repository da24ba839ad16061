"""A submission folder: the files a lab's `submission:` declares, checked before anything starts.

Every declared file must be there, as a regular file of text (UTF-8, no NUL,
at most MAX_BYTES); nothing else may be (hidden files like .gitkeep aside).
Anything wrong is a SubmissionError naming the file: the submission is
unusable, exit 2, and no grade is given or blamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portlab.errors import UsageError, printable
from portlab.model.types import Lab, SubmissionFile

MAX_BYTES = 256 * 1024


class SubmissionError(UsageError):
    """The submission itself is unusable (missing or extra files, not text, ...)."""


@dataclass(frozen=True)
class Submitted:
    entry: SubmissionFile
    content: bytes


def expected(lab: Lab) -> list[str]:
    return [f.file for f in lab.submission]


def read(lab: Lab, folder: Path) -> list[Submitted]:
    """The declared files of `folder`, in the lab's order."""
    if not lab.submission:
        raise UsageError(f"lab '{lab.name}' takes no submission: its lab file has no "
                         "`submission:`", hint="docs/grading.md says how a lab declares one")
    if not folder.is_dir():
        raise SubmissionError(f"the submission folder {printable(str(folder))} does not exist "
                              "or is not a folder")
    wanted = expected(lab)
    extra = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                   if (p.is_file() or p.is_symlink())
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and str(p.relative_to(folder)) not in wanted)
    if extra:
        raise SubmissionError(
            f"the submission has files lab '{lab.name}' does not take: "
            f"{', '.join(printable(e) for e in extra)}",
            hint=f"it takes exactly: {', '.join(wanted)} (rename or remove the others)")
    out = []
    for entry in lab.submission:
        path = folder / entry.file
        shown = f"{entry.file} (in {printable(str(folder))})"
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise SubmissionError(f"{shown} is not a plain file")
        if not path.exists():
            raise SubmissionError(f"{shown} is missing",
                                  hint=f"lab '{lab.name}' takes: {', '.join(wanted)}")
        content = path.read_bytes()
        if len(content) > MAX_BYTES:
            raise SubmissionError(f"{shown} is {len(content)} bytes; at most {MAX_BYTES} are "
                                  "taken")
        if b"\0" in content:
            raise SubmissionError(f"{shown} is not text (it holds NUL bytes)")
        try:
            content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SubmissionError(f"{shown} is not UTF-8 text (byte {exc.start})") from None
        out.append(Submitted(entry, content))
    return out
