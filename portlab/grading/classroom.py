"""Course staff's side: writing a starter repository, and reference submissions.

`write` puts a starter repository's files (their texts come from
portlab.views.starter) into a new or empty folder. `solution_files` is the
lab's reference solution (or one of its known wrong ones) for one student's
variant, as the files of a submission folder: what staff check their setup
with, and what the tests grade.
"""

from __future__ import annotations

from pathlib import Path

from portlab.errors import UsageError, printable
from portlab.grading.grade import variant_lab
from portlab.model.context import PREVIEW_TOKEN, Binding
from portlab.model.types import Lab, SubmissionFile
from portlab.model.variant import Variant

SUBMISSION_DIR = "submission"


def write(folder: Path, files: dict[str, str]) -> list[str]:
    """Write `files` (path -> text) into `folder`, which must be new or empty. The paths."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{printable(str(folder))} exists and is not an empty folder; nothing "
                         "was written", hint="give a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    return sorted(files)


def solution_files(name: str, student: str, *, salt: str = "",
                   wrong: str | None = None) -> tuple[Variant, dict[str, str]]:
    """The reference solution (or the wrong one named) of `student`'s variant, as the files
    of a submission folder."""
    lab, variant = variant_lab(name, student, salt)
    if not lab.submission:
        raise UsageError(f"lab '{lab.name}' takes no submission")
    binding = Binding(lab, lab.name, variant.subnets, PREVIEW_TOKEN, key_seed=variant.key_seed)
    files: dict[str, str] = {}
    for i, entry in enumerate(lab.submission):
        files[entry.file] = _content(lab, binding, entry, i, wrong)
    return variant, files


def _content(lab: Lab, binding: Binding, entry: SubmissionFile, i: int,
             wrong: str | None) -> str:
    if wrong is None:
        text = binding.render(("submission", i, "solution"), entry.solution)
        return text if text.endswith("\n") or not text else text + "\n"
    found = lab.wrong(wrong)
    if found is None:
        names = ", ".join(w.name for w in lab.wrong_solutions) or "(none)"
        raise UsageError(f"lab '{lab.name}' has no wrong solution '{printable(wrong)}'. "
                         f"Known: {names}")
    if entry.path is not None:
        raise UsageError(f"wrong solution '{wrong}' cannot be written as a submission: "
                         f"{entry.file} is a file placed on {entry.node}, and wrong solutions "
                         "are scripts")
    index = lab.wrong_solutions.index(found)
    script = found.apply.get(entry.node, "")
    return binding.render(("wrong_solutions", index, "apply", entry.node), script)
