"""`portlab grade`: one student's submission, or a whole class's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from portlab.cli.common import color, core, progress, salt_option, say
from portlab.errors import ExitCode, PortlabError, UsageError

Runners = dict[str, dict[str, object]]  # GitHub Classroom runner id -> its result (views.grade)


def _writable(path: str | None, what: str) -> Path | None:
    if path is None:
        return None
    target = Path(path)
    if not target.parent.resolve().is_dir():
        raise UsageError(f"cannot write the {what} {path}: its folder does not exist")
    return target


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None


@click.command("grade")
@click.argument("lab")
@click.option("--submission", "folder", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="The student's submission folder (the files the lab's `submission:` "
                   "declares).")
@click.option("--submissions", "class_folder", metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="A whole class: one subfolder per student, named by their ID.")
@click.option("--student", metavar="ID",
              help="Whose variant to grade on. Default: $PORTLAB_STUDENT; then the "
                   "repository's name after '$PORTLAB_ASSIGNMENT-' (GitHub Classroom's "
                   "<assignment-prefix>-<login>); last, who started the CI run "
                   "($GITHUB_ACTOR, $GITLAB_USER_LOGIN).")
@salt_option
@click.option("--json", "json_out", metavar="FILE",
              help="Write the grade as JSON (docs/grade-json.md); with --submissions, a "
                   "folder for one JSON per student.")
@click.option("--junit", metavar="FILE", help="Write JUnit XML: one testcase per check.")
@click.option("--classroom", is_flag=True,
              help="Hand the points to GitHub Classroom: a reporter runner per check, each "
                   "a step output named by the check (letters and digits) in $GITHUB_OUTPUT, "
                   "or printed when there is none; written whatever the outcome (an "
                   "unusable submission fails every check, a grade that could not run "
                   "counts nothing).")
@click.option("--gradescope", metavar="FILE", help="Write Gradescope's results.json.")
@click.option("--csv", "csv_out", metavar="FILE",
              help="With --submissions: a line per student (score, max, passed, per check).")
@click.option("--parallel", type=click.IntRange(1, 64), metavar="N",
              help="With --submissions: grades at once (default: two per core).")
def command(lab: str, folder: Path | None, class_folder: Path | None, student: str | None,
            salt: str | None, json_out: str | None, junit: str | None, classroom: bool,
            gradescope: str | None, csv_out: str | None, parallel: int | None) -> None:
    """Grade a submission by real traffic, on a fresh instance of the student's variant.

    Applies the submitted files in the lab's order, runs its checks, gives
    each check its points, and removes everything it started (Ctrl-C too).
    The verdict comes only from the grader's own probes.

    \b
    Exit codes: 0 the pass mark was met, 1 it was not, 2 the submission is
    unusable (the message names the file), 3 grading could not run (Docker,
    or a probe that could not observe): never a score that blames the student.
    With --submissions: 0 when every submission was graded, 3 when some could
    not be, 2 for an unusable folder.
    """
    if (folder is None) == (class_folder is None):
        raise UsageError("give --submission DIR (one student) or --submissions DIR (a class)")
    if class_folder is not None:
        _batch(lab, class_folder, salt, json_out, csv_out, parallel, junit, classroom,
               gradescope, student)
        return
    assert folder is not None
    if not classroom:
        _one(lab, folder, student, salt, json_out, junit, gradescope, csv_out, parallel, None)
        return
    # With --classroom, the reporter gets its runners on every way out: a fail with the
    # reason for an unusable submission, an error that counts nothing for anything else.
    from portlab.grading.submission import SubmissionError
    from portlab.views import grade as view

    sent: list[bool] = []

    def send(runners: Runners) -> None:
        _classroom(runners)
        sent.append(True)

    try:
        _one(lab, folder, student, salt, json_out, junit, gradescope, csv_out, parallel, send)
    except SystemExit:
        raise
    except BaseException as exc:
        if sent:  # the grade's own runners went out; a file that could not be written
            raise  # says so on its own
        usable = not isinstance(exc, SubmissionError)
        reason = exc.message if isinstance(exc, PortlabError) else \
            f"portlab failed: {type(exc).__name__}"
        if not usable:
            reason = f"the submission cannot be used: {reason}"
        _classroom(view.classroom_unjudged(lab, _checks_of(lab), reason, usable=usable))
        raise


def _checks_of(lab: str) -> list[tuple[str, str, int]]:
    """The lab's checks (id, title, points), or the runners the workflow names
    ($PORTLAB_RUNNERS) when the lab itself cannot be read."""
    try:
        return core().check_list(lab)
    except Exception:  # an error about the lab is being reported already
        names = [n.strip() for n in os.environ.get("PORTLAB_RUNNERS", "").split(",")]
        return [(n, n, 0) for n in names if n]


def _one(lab: str, folder: Path, student: str | None, salt: str | None, json_out: str | None,
         junit: str | None, gradescope: str | None, csv_out: str | None, parallel: int | None,
         classroom: Callable[[Runners], None] | None) -> None:
    if csv_out or parallel:
        raise UsageError("--csv and --parallel go with --submissions (a class)")
    outputs = {what: _writable(path, what) for what, path in
               (("JSON file", json_out), ("JUnit file", junit),
                ("Gradescope file", gradescope))}
    from portlab.grading.result import Grade, Status
    from portlab.views import grade as view

    who, where = core().find_student(student)
    if where != "given":
        click.echo(f"portlab: the student is {who}, from {where}", err=True)
    result = core().grade(lab, folder, student=who, salt=salt, progress=progress())
    say(view.terminal(result, color=color()))
    writers: dict[str, Callable[[Grade], str]] = {
        "JSON file": view.as_json, "JUnit file": view.junit,
        "Gradescope file": lambda g: json.dumps(view.gradescope(g), indent=2)}
    if classroom is not None:
        classroom(view.classroom(result, core().check_list(lab)))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:  # the run's page shows the grade, check by check
            try:
                with open(summary, "a") as fh:
                    fh.write(view.markdown(result))
            except OSError as exc:
                click.echo(f"portlab: could not write the step summary {summary}: "
                           f"{exc.strerror or exc}", err=True)
    for what, path in outputs.items():
        if path is None:
            continue
        if what == "Gradescope file" and result.status is Status.ERROR:
            click.echo(f"portlab: no {path} written: this grade could not run, and Gradescope "
                       "then reports the autograder's failure instead of a score", err=True)
            continue
        _write(path, writers[what](result), what)
    sys.exit(int({Status.PASSED: ExitCode.OK, Status.FAILED: ExitCode.CHECKS_FAILED,
                  Status.ERROR: ExitCode.RUNTIME}[result.status]))


def _classroom(runners: Runners) -> None:
    """The reporter's runners, a `RUNNER=payload` line each, to $GITHUB_OUTPUT (or stdout)."""
    from portlab.views import grade as view

    lines = view.classroom_lines(runners)
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a") as fh:
            fh.write("".join(f"{line}\n" for line in lines))
    else:
        for line in lines:
            click.echo(line)


def _batch(lab: str, root: Path, salt: str | None, json_dir: str | None, csv_out: str | None,
           parallel: int | None, junit: str | None, classroom: bool, gradescope: str | None,
           student: str | None) -> None:
    if junit or classroom or gradescope or student:
        raise UsageError("with --submissions, grades go to --csv FILE and --json DIR (one per "
                         "student); --junit, --classroom, --gradescope and --student are for one "
                         "submission")
    out_dir = Path(json_dir) if json_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = _writable(csv_out, "CSV file")
    from portlab.grading.batch import Entry
    from portlab.grading.result import Status
    from portlab.views import grade as view

    def done(entry: Entry) -> None:
        if out_dir is not None and entry.grade is not None:
            _write(out_dir / f"{entry.student}.json", view.as_json(entry.grade), "JSON file")

    batch = core().grade_class(lab, root, salt=salt, parallel=parallel, progress=progress(),
                               on_done=done)
    ids = [c.id for c in core().get_lab(lab).checks]
    rows = [(e.student, e.grade, e.problem) for e in batch.entries]
    if csv_path is not None:
        _write(csv_path, view.csv_text(rows, ids), "CSV file")
    say(view.class_table(batch), nl=False)
    broken = [e for e in batch.entries if e.grade is not None and e.grade.status is Status.ERROR]
    sys.exit(int(ExitCode.RUNTIME if broken else ExitCode.OK))
