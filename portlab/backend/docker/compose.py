"""Docker Compose: find which one is installed (v2 plugin or v1 docker-compose) and run it.

portlab renders plain format-2.4 files and passes the project with `-p`, which
both versions accept. It never relies on `up --wait` (v2 only): readiness is
portlab's own (runtime.wait_ready).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from portlab.backend.docker import children
from portlab.errors import PortlabError, RuntimeProblem
from portlab.names import scope


@dataclass(frozen=True)
class Compose:
    argv: tuple[str, ...]  # ("docker", "compose") or ("docker-compose",)

    @property
    def command(self) -> str:
        """As one string, for tools that want it so (pytest-docker)."""
        return " ".join(self.argv)

    @property
    def version(self) -> str:
        """The version it reports (asked only when wanted: v1 takes half a second to say)."""
        return _version(self.argv) or "unknown"


@functools.lru_cache(maxsize=1)
def detect() -> Compose:
    """The installed Compose; prefers v2. Raises RuntimeProblem naming what is missing.

    v2 is a Docker CLI plugin and answers `docker compose version` in milliseconds; v1
    (`docker-compose`, a Python program) is taken on its presence alone, since asking it
    anything costs a Python start-up on every portlab command.
    """
    if os.environ.get("PORTLAB_COMPOSE"):
        return Compose(tuple(os.environ["PORTLAB_COMPOSE"].split()))
    if shutil.which("docker") and _version(("docker", "compose")):
        return Compose(("docker", "compose"))
    if shutil.which("docker-compose"):
        return Compose(("docker-compose",))
    raise RuntimeProblem(
        "Docker Compose is not installed (neither `docker compose` nor `docker-compose` works)",
        hint="install the Compose plugin (package docker-compose-plugin) or docker-compose",
    )


def _version(argv: tuple[str, ...]) -> str | None:
    try:
        proc = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


UP_ARGS = ["up", "-d", "--no-build"]  # how portlab creates a lab


def project_name(instance: str) -> str:
    """The Compose project of an instance (valid for v1 and v2), unique per scope."""
    return f"portlab-{scope()}-{instance}"


def _spawn(argv: list[str]) -> subprocess.Popen[str]:
    # Own process group: a Ctrl-C reaches portlab, which then stops compose and cleans up.
    # If portlab is killed outright, compose dies with it (children.preexec), rather than
    # going on creating containers after the next `up` or `down` has cleaned up.
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=children.preexec(),
                            cwd="/")  # the project directory: no stray .env from where we are


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _argv(project: str, args: list[str]) -> list[str]:
    return [*detect().argv, "-p", project, "-f", "-", *args]


class Ahead:
    """Compose started ahead of time for one project and command, waiting on stdin for its
    compose file. Compose (v1 above all, a Python program) takes about half a second to
    start; started first thing, it does so while portlab loads and plans the lab."""

    def __init__(self, project: str, args: list[str]) -> None:
        self.argv = _argv(project, args)
        self.proc: subprocess.Popen[str] | None = _spawn(self.argv)

    def take(self, argv: list[str]) -> subprocess.Popen[str] | None:
        """The waiting process, if it was started for exactly `argv` (once)."""
        if self.proc is None or argv != self.argv or self.proc.poll() is not None:
            return None
        proc, self.proc = self.proc, None
        return proc

    def cancel(self) -> None:
        """Stop it if nobody took it (closing stdin without a file makes Compose fail)."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            _stop(proc)


@contextmanager
def ahead(project: str, args: list[str]) -> Iterator[Ahead | None]:
    """Start Compose for `project` ahead of time; stopped on leaving if it was not used. None
    where it cannot start (then run() starts Compose itself, and says what is wrong)."""
    try:
        early: Ahead | None = Ahead(project, args)
    except (PortlabError, OSError):
        early = None
    try:
        yield early
    finally:
        if early is not None:
            early.cancel()


def run(project: str, config: str, args: list[str], *,
        early: Ahead | None = None) -> subprocess.CompletedProcess[str]:
    """Run compose for one project on the compose file `config` (its text, handed over on
    stdin: no file is written, so none is left behind if portlab is killed). `early`: a
    Compose started ahead for this very command, used if it is. Ctrl-C stops it (and goes
    on as KeyboardInterrupt)."""
    argv = _argv(project, args)
    proc = early.take(argv) if early is not None else None
    if proc is None:
        proc = _spawn(argv)
    try:
        out, err = proc.communicate(config)
    except BaseException:
        _stop(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
