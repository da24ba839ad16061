"""`portlab classroom init` and `portlab classroom solution`: for course staff."""

from __future__ import annotations

from pathlib import Path

import click

from portlab.cli.common import core, salt_option


@click.group("classroom")
def group() -> None:
    """Hand a lab out as a repository that CI grades (GitHub Classroom, GitLab)."""


@group.command("init")
@click.argument("lab")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@salt_option
@click.option("--install", metavar="SPEC",
              help="Where CI installs portlab from: a pip requirement (a git URL, a wheel's "
                   "URL or path). Default: this exact version from PyPI, where portlab's "
                   "distribution is named portlab-net.")
@click.option("--assignment", metavar="PREFIX",
              help="The Classroom assignment's repository prefix: a student's repository is "
                   "PREFIX-<login>, and its name says whose variant to grade. Default: the "
                   "lab's name.")
def init(lab: str, folder: Path, salt: str | None, install: str | None,
         assignment: str | None) -> None:
    """Write a starter repository for LAB into FOLDER (new or empty).

    \b
    README.md                       the brief, and how to get your own variant
    submission/                     the files to hand in, with comments
    .github/workflows/classroom.yml grades each push, feeds Classroom's reporter
    .gitlab-ci.yml                  the same on GitLab, with the JUnit report
    INSTRUCTORS.md                  how to set the course up
    """
    files = core().classroom_init(lab, folder, salt=salt, install=install,
                                  assignment=assignment)
    click.echo(f"Wrote the starter repository of lab '{lab}' to {folder}:")
    for name in files:
        click.echo(f"  {name}")


@group.command("solution")
@click.argument("lab")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--student", required=True, metavar="ID", help="Whose variant.")
@salt_option
@click.option("--wrong", metavar="NAME", help="One of the lab's known wrong solutions instead.")
def solution(lab: str, folder: Path, student: str, salt: str | None, wrong: str | None) -> None:
    """Write LAB's reference solution for a student's variant into FOLDER, as a submission.

    For checking a course's setup: `portlab grade LAB --submission FOLDER
    --student ID` should give full marks (and a --wrong one its points).
    """
    var, files = core().classroom_solution(lab, folder, student=student, salt=salt,
                                           wrong=wrong)
    what = f"wrong solution '{wrong}'" if wrong else "the reference solution"
    click.echo(f"Wrote {what} of lab '{lab}' for student {var.student} to {folder}: "
               f"{', '.join(files)}")
