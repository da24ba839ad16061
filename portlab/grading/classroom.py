"""Course staff's side: writing a starter repository, and reference submissions.

`write` puts a starter repository's files (their texts come from
portlab.views.starter) into a new or empty folder. `solution_files` is the
lab's reference solution (or one of its known wrong ones) for one student's
variant, as the files of a submission folder: what staff check their setup
with, and what the tests grade.
"""

from __future__ import annotations

import re
from pathlib import Path

from portlab.errors import UsageError, printable
from portlab.model.context import PREVIEW_TOKEN, Binding
from portlab.model.types import Lab, SubmissionFile
from portlab.model.variant import Variant, variant_lab

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
    if wrong is not None:
        return variant, _wrong_files(lab, binding, wrong)
    files: dict[str, str] = {}
    for i, entry in enumerate(lab.submission):
        files[entry.file] = _ending(binding.render(("submission", i, "solution"),
                                                   entry.solution))
    return variant, files


def _ending(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


# `cat > PATH <<EOF ... EOF` (or <<'EOF'): how a lab's scripts write a file
HEREDOC = re.compile(r"^[ \t]*cat[ \t]+>[ \t]*(?P<path>\S+)[ \t]+<<-?[ \t]*(?P<q>['\"]?)"
                     r"(?P<tag>\w+)(?P=q)[ \t]*\n(?P<body>.*?)^(?P=tag)[ \t]*$\n?", re.M | re.S)


def _wrong_files(lab: Lab, binding: Binding, wrong: str) -> dict[str, str]:
    """A known wrong solution as the files of a submission. A wrong solution is a script per
    node; on a node whose submission file is placed (a WireGuard configuration), the file the
    script writes there (`cat > PATH <<EOF`) is that file, the placed file's own command
    (`wg-quick up wg0`) is left to the grade, and the script's other commands go into the
    node's script file, if the submission has one."""
    found = lab.wrong(wrong)
    if found is None:
        names = ", ".join(w.name for w in lab.wrong_solutions) or "(none)"
        raise UsageError(f"lab '{lab.name}' has no wrong solution '{printable(wrong)}'. "
                         f"Known: {names}")
    index = lab.wrong_solutions.index(found)
    files: dict[str, str] = {}
    for i, entry in enumerate(lab.submission):
        if entry.path is not None:  # unless the wrong script writes it, it is the right one
            files[entry.file] = _ending(binding.render(("submission", i, "solution"),
                                                       entry.solution))
    for node, script in found.apply.items():
        text = binding.render(("wrong_solutions", index, "apply", node), script)
        placed: dict[str, SubmissionFile] = {e.path: e for e in lab.submission
                                             if e.node == node and e.path}
        runs = {binding.render(("submission", lab.submission.index(e), "run"), e.run).strip()
                for e in placed.values()}

        def take(m: re.Match[str], placed: dict[str, SubmissionFile] = placed) -> str:
            entry = placed.get(m.group("path"))
            if entry is None:
                return m.group(0)
            files[entry.file] = _ending(m.group("body"))
            return ""

        rest = HEREDOC.sub(take, text)
        rest = "\n".join(ln for ln in rest.splitlines() if ln.strip() not in runs)
        script_entry = next((e for e in lab.submission if e.node == node and e.path is None),
                            None)
        if script_entry is not None:
            files[script_entry.file] = _ending(rest.strip("\n"))
        elif _commands(rest):
            takes = (f"takes only {', '.join(e.file for e in placed.values())} there"
                     if placed else f"has no file for {node}: a student changes nothing there")
            raise UsageError(
                f"wrong solution '{wrong}' cannot be written as a submission: it runs commands "
                f"on {node} ({_commands(rest)[0]!r}, ...), and the submission {takes}",
                hint="a wrong solution is a submission when its commands go where the "
                     "submission's files go (docs/grading.md)")
    for entry in lab.submission:  # a script the wrong solution leaves alone: left empty
        files.setdefault(entry.file, "# (this wrong solution changes nothing here)\n")
    return {e.file: files[e.file] for e in lab.submission}


def _commands(script: str) -> list[str]:
    """The lines of a script that do something (not blank, not a comment, not `umask`)."""
    return [ln.strip() for ln in script.splitlines()
            if ln.strip() and not ln.strip().startswith(("#", "umask "))]
