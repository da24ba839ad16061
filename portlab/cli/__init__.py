"""The `portlab` command. Thin: each verb (one module each) parses, calls portlab.core, prints
a view. Errors become one message and an exit code here.

Exit codes: 0 ok, 1 checks failed, 2 usage or lab error, 3 Docker/Compose/image
problem or a check that could not be judged, 4 internal error (a bug), 130
interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from types import FrameType
from typing import NoReturn

import click

from portlab import __version__
from portlab.cli import (
    check,
    classroom,
    demo,
    doctor,
    down,
    grade,
    image,
    next,
    prune,
    render,
    shell,
    show,
    solve,
    status,
    test,
    trace,
    up,
)
from portlab.cli import list as list_
from portlab.cli.common import color
from portlab.errors import ExitCode, PortlabError, untrusted


class PortlabGroup(click.Group):
    """Turns portlab's errors into one message and an exit code (a traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> object:
        debug = bool(ctx.params.get("debug")) or os.environ.get("PORTLAB_DEBUG") == "1"
        try:
            return super().invoke(ctx)
        except PortlabError as exc:
            if debug:
                raise
            _say(str(exc) + _doctor_says(ctx, exc))
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("portlab: interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            lost = _explained(exc)  # the engine went away: not a bug
            if lost is not None:
                _say(str(lost) + _doctor_says(ctx, lost))
                ctx.exit(int(lost.exit_code))
            click.echo(click.style("portlab: internal error: ", fg="red", bold=True) +
                       f"{type(exc).__name__}: {untrusted(str(exc))}\n  run again with --debug "
                       "for the traceback, and please report it", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def _say(message: str) -> None:
    # a message may quote what a node said (a script's stderr): shown, never interpreted
    tty = sys.stderr.isatty()
    styled = color(sys.stderr)
    head = click.style("portlab: ", fg="red", bold=True) if styled else "portlab: "
    text = head + untrusted(message)
    if tty:
        from portlab.views import screen

        text = screen.fit(text, shutil.get_terminal_size().columns)
    click.echo(text, err=True, color=styled)


# The verbs whose runtime errors end with what `portlab doctor` knows about them.
DOCTOR_VERBS = ("up", "grade", "image")


def _doctor_says(ctx: click.Context, exc: PortlabError) -> str:
    """For a runtime error of `up`, `grade` or `image`: the doctor's quick findings (host files
    only, no Docker, no container) that relate to it, one line each; "" if none. Never
    raises: the doctor must not break the error it explains."""
    try:
        from portlab.errors import BackendUnreachable, RuntimeProblem

        if ctx.invoked_subcommand not in DOCTOR_VERBS or not isinstance(exc, RuntimeProblem):
            return ""
        from portlab.doctor.checks import related
        from portlab.views.doctor import error_lines

        unreachable = isinstance(exc, BackendUnreachable)
        from portlab import backend

        found = related(exc.message if unreachable else str(exc), unreachable=unreachable,
                        engine_root=backend.get().data_root)
        return "\n" + error_lines(found) if found else ""
    except Exception:
        return ""


def _explained(exc: Exception) -> PortlabError | None:
    try:
        from portlab import backend

        return backend.get().explain(exc)
    except Exception:
        return None


def _sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    cli(prog_name="portlab")


@click.group(cls=PortlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portlab")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.option("--no-pager", is_flag=True,
              help="Print long output at once, never through a pager (also PORTLAB_PAGER=cat).")
def cli(debug: bool, no_pager: bool) -> None:
    """Learn ports, NAT, port forwarding, firewalls and VPNs on real Linux containers.

    On a terminal, text is wrapped to its width, and output longer than the
    screen goes through a pager (PORTLAB_PAGER, else PAGER, else `less -FRX`).

    \b
    A first session, with the first lab of the path (`portlab next` names yours):
      portlab list                 the labs, in the order of the path
      portlab show ports           the story, the network, your tasks
      portlab up ports             start it (builds the node image the first time)
      portlab shell server         a root shell on the lab's server
      portlab check                prove your work with real traffic
      portlab down ports           remove everything the lab started
    """
    if no_pager:
        os.environ["PORTLAB_PAGER"] = "cat"


for _command in (list_.command, show.command, up.command, down.command, prune.command,
                 status.command, check.command, trace.command, demo.command, solve.command,
                 render.command, shell.shell, shell.exec_, grade.command, classroom.group,
                 image.group, doctor.command, test.command, next.command):
    cli.add_command(_command)
