"""Machine-wide locks, so that concurrent portlab runs do not trip over each other.

They are `flock` locks on files in one folder of the temporary directory,
`portlab-locks`, shared by every user of the machine, since the Docker daemon
they guard is shared too: the folder is world-writable (and sticky), its files
are made readable and writable by all, and a file another user made that this
one may only read is locked read-only (flock needs no write access). The
kernel drops a lock the moment its holder dies, even by SIGKILL, so a killed
portlab never leaves one behind. They hold no state (that lives in Docker's
labels); the file only carries the holder's pid for the message.

* `instance_lock`: one `portlab up` per instance and scope at a time. Without
  it, a second `up` of the same instance would take the first one's
  half-started containers for leftovers and remove them under its feet.
* `classroom_lock`: one `portlab classroom serve` per scope.
* `build_lock`: one image build (or image prune) at a time. Re-entrant in the
  same process, so `ensure` can hold it around `build`.
* `start_slot`: at most a few labs are being created at once on this machine
  (one per core, at least two; $PORTLAB_PARALLEL_STARTS overrides). Creating a
  lab is CPU-bound work for Compose and the daemon: fifty at once on two cores
  only thrash, and their nodes then miss their start-up deadlines. Queued, each
  start is quick and the whole batch is done sooner.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from portlab.errors import RuntimeProblem, UsageError

SHARED = 0o1777  # the folder: everyone may make files in it, and remove only their own
EVERYONE = 0o666  # a lock file: every user's portlab may open and lock it


def lock_dir() -> Path:
    """The machine-wide folder of portlab's lock files (one for every user)."""
    path = Path(tempfile.gettempdir()) / "portlab-locks"
    try:
        path.mkdir()
        os.chmod(path, SHARED)  # as made, the umask took bits away
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeProblem(f"cannot make the lock folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RuntimeProblem(f"the lock folder {path} is not writable for this user",
                             hint=f"make it shared for every user: `sudo chmod 1777 {path}`")
    return path


def _open(path: Path) -> IO[str]:
    """A lock file, made (for every user) if missing; read-only if another user made it so."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, EVERYONE)
    except PermissionError:  # someone else's file, or a sticky folder's rule against O_CREAT
        try:
            fd = os.open(path, os.O_RDWR)
        except PermissionError:
            try:
                fd = os.open(path, os.O_RDONLY)
            except PermissionError:
                raise RuntimeProblem(f"cannot open the lock file {path}",
                                     hint=f"`sudo chmod 666 {path}` lets every user lock it"
                                     ) from None
            return os.fdopen(fd, "r")
    else:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, EVERYONE)  # as made, the umask took bits away
    return os.fdopen(fd, "r+")


@contextmanager
def instance_lock(scope: str, instance: str) -> Iterator[None]:
    """Hold the lock of one instance, or say at once who holds it (no waiting)."""
    def busy(holder: str) -> UsageError:
        return UsageError(f"another `portlab up` is starting instance '{instance}' right now "
                          f"(pid {holder}); nothing was changed",
                          hint="wait for it to finish, or stop it (Ctrl-C)")
    with _exclusive(lock_dir() / f"up-{scope}-{instance}.lock", busy):
        yield


@contextmanager
def classroom_lock(scope: str) -> Iterator[None]:
    """Held by `portlab classroom serve` while it runs: one classroom per scope. Whoever takes
    it may remove the seats a killed classroom left."""
    def busy(holder: str) -> UsageError:
        return UsageError(f"a classroom is already being served here (pid {holder})",
                          hint="stop it first (Ctrl-C where it runs), or give this one "
                               "another PORTLAB_SCOPE")
    with _exclusive(lock_dir() / f"classroom-{scope}.lock", busy):
        yield


@contextmanager
def _exclusive(path: Path, busy: Callable[[str], UsageError]) -> Iterator[None]:
    """Hold the lock file at `path`, or raise busy(its holder's pid) at once (no waiting)."""
    while True:
        fh = _open(path)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise busy(holder) from None
        if _still_linked(fh, path):
            break
        fh.close()  # the holder before us removed this file as it let go: open the new one
    with fh:
        _write_pid(fh)
        try:
            yield
        finally:
            # Remove the file while still holding it, so lock files do not pile up (one per
            # instance name ever used). One left by a killed portlab is reused next time;
            # one another user made stays (the sticky folder keeps it theirs to remove).
            try:
                path.unlink(missing_ok=True)
            except PermissionError:
                pass
            fcntl.flock(fh, fcntl.LOCK_UN)


def forget_stale(scope: str, instance: str | None = None) -> None:
    """Remove the instance lock files of `scope` (of one instance, or all) that nobody holds:
    the ones a `portlab up` killed outright (SIGKILL) left. One in use stays."""
    pattern = f"up-{scope}-{instance}.lock" if instance is not None else f"up-{scope}-*.lock"
    for path in lock_dir().glob(pattern):
        try:
            with instance_lock(scope, path.name[len(f"up-{scope}-"):-len(".lock")]):
                pass  # removes the file as it lets go
        except UsageError:
            pass  # a `portlab up` is at work on it


def _still_linked(fh: IO[str], path: Path) -> bool:
    """Whether the open lock file is still the one at `path` (not unlinked meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False


_build_depth = threading.local()
_build_mutex = threading.Lock()


@contextmanager
def build_lock() -> Iterator[None]:
    """One image build at a time on this machine; waits for the holder. Re-entrant."""
    depth = getattr(_build_depth, "n", 0)
    if depth:
        _build_depth.n = depth + 1
        try:
            yield
        finally:
            _build_depth.n -= 1
        return
    # One file for every user of the machine (the Docker daemon is shared too).
    with _build_mutex, _open(lock_dir() / "image.lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _write_pid(fh)
        _build_depth.n = 1
        try:
            yield
        finally:
            _build_depth.n = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def start_slots() -> int:
    """How many labs may be created at the same time on this machine."""
    raw = os.environ.get("PORTLAB_PARALLEL_STARTS", "")
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= 64:
            raise UsageError(f"PORTLAB_PARALLEL_STARTS='{raw}' is not valid",
                             hint="use a whole number from 1 to 64")
        return int(raw)
    return max(2, os.cpu_count() or 1)


SLOT_POLL = 0.05  # seconds between looks at the slots while queued


@contextmanager
def start_slot(waiting: Callable[[int], None] | None = None) -> Iterator[None]:
    """Hold one of the machine's start slots; `waiting(n)` is told once if all n are taken."""
    n = start_slots()
    files = [_open(lock_dir() / f"start-{i}.lock") for i in range(n)]
    try:
        told = False
        while True:
            for fh in files:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                _write_pid(fh)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
                return
            if not told and waiting is not None:
                waiting(n)
                told = True
            time.sleep(SLOT_POLL)
    finally:
        for fh in files:
            fh.close()


def _write_pid(fh: IO[str]) -> None:
    if not fh.writable():
        return  # another user's file, locked read-only: the pid is only for messages
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
