"""`portlab classroom init` and `portlab classroom solution`: for course staff."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from portlab.cli.common import core, salt_option

if TYPE_CHECKING:
    from portlab.web.classroom import Classroom


@click.group("classroom")
def group() -> None:
    """Hand a lab out: as a repository that CI grades (GitHub Classroom, GitLab), or served
    to a class in the browser (`serve`)."""


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


@group.command("serve")
@click.argument("lab")
@click.option("--seats", type=click.IntRange(1, 60), metavar="N",
              help="How many numbered seats (links), at most 60.")
@click.option("--roster", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A file of student IDs, one per line: a seat each, with that student's "
                   "variant of the lab.")
@salt_option
@click.option("--bind", default="127.0.0.1", show_default=True, metavar="ADDR",
              help="The address to listen on. Anything but loopback needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow --bind to an address others can reach (each seat's link is its "
                   "only key: use TLS, or a reverse proxy with HTTPS).")
@click.option("--port", type=click.IntRange(0, 65535), default=8780, show_default=True,
              help="The port to listen on (0: any free one, printed).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Serve HTTPS with this certificate (PEM), with --tls-key.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The certificate's private key (PEM).")
@click.option("--idle", type=click.FloatRange(1, 24 * 60), default=30, show_default=True,
              metavar="MINUTES",
              help="Stop a seat's lab after this long without its student (no open "
                   "terminal, no request); the next visit starts a fresh one.")
@click.option("--max-running", type=click.IntRange(1, 60), metavar="N",
              help="At most N seats with a lab up at once (default: every seat); a seat "
                   "opened beyond that waits for a free place. See the README's measured "
                   "capacity for this machine.")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="The address students type, when a reverse proxy serves the pages "
                   "(https://lab.example.org): pages from there may use the terminals.")
@click.option("--links", "links_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the links to this file (CSV: seat, student, link), readable "
                   "by you alone.")
def serve(lab: str, seats: int | None, roster: Path | None, salt: str | None, bind: str,
          allow_remote: bool, port: int, tls_cert: Path | None, tls_key: Path | None,
          idle: float, max_running: int | None, origins: tuple[str, ...],
          links_file: Path | None) -> None:
    """Serve LAB to a class in the browser: a link per seat, a lab per student.

    \b
    Each student opens their link and gets the brief, the lab's diagram,
    a terminal on each node they work on, and Check and Reset buttons.
    A seat's lab starts when its link is first opened, and stops after
    --idle minutes without its student. The trainer's link opens a
    dashboard: every seat's state and checks, a read-only view of any
    seat's terminal, Reset and Stop, and the results as CSV.

    \b
    Ctrl-C stops the server and removes every lab it started. Killed
    outright, it leaves them: the next `classroom serve` (or `portlab
    down --all`) removes them.

    \b
    Examples:
      portlab classroom serve forwarding --seats 20
      portlab classroom serve forwarding --roster students.txt \\
          --bind 0.0.0.0 --allow-remote --tls-cert cert.pem --tls-key key.pem
    """
    from portlab.cli.common import progress, web_bind
    from portlab.errors import UsageError
    from portlab.web.hosting import Settings

    if (seats is None) == (roster is None):
        raise UsageError("say how many seats: --seats N, or --roster FILE (one student ID "
                         "per line)", hint=f"portlab classroom serve {lab} --seats 20")
    names = tuple(line.strip() for line in roster.read_text().splitlines()
                  if line.strip() and not line.lstrip().startswith("#")) if roster else ()
    host, port = web_bind(bind, port, allow_remote)
    settings = Settings(lab, seats=seats or 0, roster=names, salt=salt, host=host, port=port,
                        tls_cert=tls_cert, tls_key=tls_key, idle_minutes=idle,
                        max_running=max_running or 0,
                        origins=tuple(o.rstrip("/") for o in origins))

    def links(room: Classroom, base: str) -> None:
        rows = [(str(s.number), s.student or "", f"{base}/s/{s.token}") for s in room.seats]
        click.echo(f"Serving lab '{lab}' to {len(rows)} seats on {base} (Ctrl-C stops it and "
                   "removes every lab).")
        click.echo(f"  trainer: {base}/t/{room.instructor}")
        for number, student, url in rows:
            click.echo(f"  seat {number:>2} {student[:20]:<20} {url}")
        if links_file is not None:
            import csv
            import os

            fd = os.open(links_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["seat", "student", "link"])
                writer.writerow(["trainer", "", f"{base}/t/{room.instructor}"])
                writer.writerows(rows)
            click.echo(f"  (also written to {links_file})")

    removed = core().classroom_serve(settings, progress(), links)
    click.echo(f"Stopped. Removed {removed} lab{'s' if removed != 1 else ''}.")
