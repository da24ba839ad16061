"""What the verbs share: the core (loaded on first use), options, and how output goes out."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, TextIO, TypeVar

import click

from portlab.cli.pager import paged
from portlab.views.progress import TerminalProgress

if TYPE_CHECKING:
    from portlab.core import Core


def core() -> Core:
    """portlab's front door (portlab.core.Core), imported on first use: `portlab up` starts
    Compose before loading it (and the Docker SDK and Jinja2 with it), so that the two
    start-ups overlap."""
    from portlab.core import API

    return API


def early_start(lab: str, instance: str | None) -> AbstractContextManager[object | None]:
    """What the engine can start before portlab's core is loaded (see Backend.early_start: the
    same, without the core's import)."""
    from portlab import backend
    from portlab.errors import PortlabError
    from portlab.names import check_instance_name

    try:
        return backend.get().early_start(check_instance_name(lab if instance is None else instance))
    except PortlabError:
        return nullcontext()  # `up` says what is wrong with the name


def color(stream: TextIO | None = None) -> bool:
    """Styles on a terminal (standard output, or `stream`), unless NO_COLOR is set
    (no-color.org) or the terminal is dumb; never into a pipe or a file."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return (stream or sys.stdout).isatty()


def terminal_width() -> int:
    """The terminal's columns, or 0 (any) when the output is not a terminal."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else 0


def say(text: str, *, nl: bool = True) -> None:
    """Text for people, to standard output. On a terminal: wrapped to its width (views.screen)
    and, when longer than the screen, through a pager, as git does; into a pipe or a file: as
    it is."""
    if not sys.stdout.isatty():
        click.echo(text, nl=nl)
        return
    from portlab.views import screen

    size = shutil.get_terminal_size()
    text = screen.fit(text, size.columns)
    lines = text.count("\n") + (1 if nl else 0)
    pager = os.environ.get("PORTLAB_PAGER", os.environ.get("PAGER", ""))
    if not pager and shutil.which("less"):
        pager = "less"
    if lines < size.lines or pager.strip() in ("", "cat") or not paged(pager, text):
        click.echo(text, nl=nl)


def progress(quiet: bool = False, verbose: bool = False) -> TerminalProgress:
    return TerminalProgress(sys.stderr, quiet=quiet, verbose=verbose)


verbose_option = click.option(
    "--verbose", "-v", is_flag=True,
    help="Also print the raw output of an image build (mmdebstrap's, Docker's); it is always "
         "kept in the build log that errors name.")


instance_option = click.option(
    "--instance", "-i", metavar="NAME",
    help="Which instance of the lab (default: the lab's own name). Lets several copies of a "
         "lab run side by side.")

lab_option = click.option("--lab", "-l", "lab", metavar="LAB",
                          help="Which lab, when more than one is up.")

param_option = click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
    help="Give one of the lab's params another value (repeatable), e.g. --param "
         "game_port=30000. `portlab show LAB` lists them under the lab's name.")


student_option = click.option(
    "--student", "-s", metavar="ID",
    help="A student's variant of the lab: the ports and addresses that student gets, and is "
         "graded on (derived from the ID and the course salt).")
salt_option = click.option(
    "--salt", metavar="SALT", envvar="PORTLAB_COURSE_SALT", show_envvar=True,
    help="The course's salt, which makes its variants its own.")


def parse_params(items: tuple[str, ...]) -> dict[str, str] | None:
    from portlab.model.params import assignments

    return assignments(items) or None


def web_bind(address: str, port: int, allow_remote: bool) -> tuple[str, int]:
    """Where a live page listens: loopback unless the user said otherwise, twice."""
    import ipaddress

    from portlab.errors import UsageError

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UsageError(f"--bind takes an IP address, not '{address}'",
                         hint="--bind 127.0.0.1 (the default)") from None
    if not ip.is_loopback and not allow_remote:
        raise UsageError(f"--bind {address} would show the lab's traffic to anyone who can "
                         "reach this machine; the page listens on 127.0.0.1 unless you add "
                         "--allow-remote", hint="leave --bind out to stay on this machine")
    return address, port


Command = TypeVar("Command", bound=Callable[..., object])  # a click command's function


def page_options(command: Command) -> Command:
    """--port, --bind and --allow-remote: where a live page (`--web`) listens. Checked by
    web_bind."""
    command = click.option("--allow-remote", is_flag=True,
                           help="With --web: allow --bind to a non-loopback address (anyone "
                                "who can reach it sees the lab's traffic).")(command)
    command = click.option("--bind", "bind", default="127.0.0.1", show_default=True,
                           metavar="ADDR",
                           help="With --web: the address the page listens on. Anything but "
                                "loopback needs --allow-remote.")(command)
    return click.option("--port", type=click.IntRange(0, 65535), default=8765,
                        show_default=True,
                        help="With --web: the port of the page (0: any free one).")(command)
