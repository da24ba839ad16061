"""A class in the browser: seats, each with an unguessable link, a lab started on demand.

This module holds the seats and their labs, and nothing of HTTP
(portlab.web.app serves them). A seat is a link: the first visit starts its
lab (its student's variant with a roster), Check and Reset act on it, an
idle seat is stopped and comes back, fresh, on the next visit. Every lab
operation goes through portlab's core API (the same `up`, `check` and `down`
as the CLI's), in a small pool of threads so that the server keeps
answering while labs start.

Instances are named `class-NN` in the caller's scope. The server holds the
classroom lock while it runs; a classroom that finds seats without a live
owner (a server killed with SIGKILL) removes them before it starts, and
`portlab down --all` removes them too.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from portlab.errors import PortlabError, UsageError, printable, untrusted

MAX_SEATS = 60
MAX_TERMINALS = 4  # open terminals of one seat (one per node it may work on, and a spare)
PREFIX = "class-"
STATES = ("waiting", "queued", "starting", "ready", "checking", "stopping", "stopped", "failed")
UP = ("starting", "ready", "checking", "stopping")  # states that hold a lab (or its start)
RETRY_AFTER = 30.0  # seconds before a visit starts again a lab that failed to start
SCROLLBACK = 64 * 1024  # bytes of a terminal's output kept for a page that opens it late


class LabOps(Protocol):
    """What a classroom needs of portlab (portlab.core.API is one; tests use a fake)."""

    def up(self, name: str, *, instance: str | None = ..., student: str | None = ...,
           salt: str | None = ...) -> Any: ...

    def down(self, name: str | None = ..., *, instance: str | None = ...) -> Any: ...

    def check(self, name: str | None = ..., *, instance: str | None = ...) -> Any: ...


def new_token() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


@dataclass
class Seat:
    number: int
    label: str  # the student's ID from the roster, or "seat 3"
    student: str | None  # whose variant (None: the lab as written)
    token: str = field(default_factory=new_token, repr=False)
    csrf: str = field(default_factory=new_token, repr=False)
    state: str = "waiting"  # see STATES
    problem: str = ""  # why it failed, in words
    checks: dict[str, bool] = field(default_factory=dict)  # last Check: id -> passed
    best: set[str] = field(default_factory=set)  # every check passed at least once
    last_check: float = 0.0
    last_seen: float = 0.0  # the student's last request (time.time())
    report: str = ""  # the last Check's text, as `portlab check` prints it
    started: float = 0.0
    failed_at: float = 0.0
    terminals: dict[str, Any] = field(default_factory=dict)  # node -> open TerminalSession

    @property
    def instance(self) -> str:
        return f"{PREFIX}{self.number:02d}"

    def summary(self, total: int, now: float) -> dict[str, Any]:
        return {"seat": self.number, "label": self.label, "student": self.student or "",
                "state": self.state, "problem": self.problem,
                "passed": sum(self.checks.values()), "total": total,
                "checks": dict(self.checks), "ever_passed": sorted(self.best),
                "last_seen": round(now - self.last_seen) if self.last_seen else None,
                "terminals": sorted(self.terminals)}


class Classroom:
    """The seats of one lab, their labs, and what happened to them."""

    def __init__(self, lab: str, ops: LabOps, *, seats: int = 0,
                 roster: list[str] | None = None, salt: str | None = None,
                 checks: list[str] | None = None, workers: int = 4,
                 describe: Callable[[Any], str] | None = None,
                 max_running: int = 0) -> None:
        if roster:
            people = [printable(s).strip() for s in roster if s.strip()]
            if len(set(people)) != len(people):
                raise UsageError("the roster names a student twice")
            made = [Seat(i + 1, p, p) for i, p in enumerate(people)]
        else:
            made = [Seat(i + 1, f"seat {i + 1}", None) for i in range(seats)]
        if not made:
            raise UsageError("a classroom needs seats: --seats N or --roster FILE")
        if len(made) > MAX_SEATS:
            raise UsageError(f"{len(made)} seats: at most {MAX_SEATS} on one machine",
                             hint="docs/scaling.md says how to run a bigger class")
        self.lab = lab
        self.ops = ops
        self.salt = salt
        self.seats = made
        self.check_ids = list(checks or [])
        self.instructor = new_token()
        self.instructor_csrf = new_token()
        self.describe = describe or _as_terminal  # a check's report in words
        self._lock = threading.Lock()
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seat")
        self._busy: dict[int, Future[None]] = {}
        self._starting: set[int] = set()
        self.max_running = max_running or len(self.seats)

    # --- who is asking ---
    def seat_for(self, token: str) -> Seat | None:
        """The seat whose token this is. Every seat is compared, in constant time each, so
        the time taken says nothing about which seat, or how much of a token, matched."""
        found = None
        for seat in self.seats:
            if hmac.compare_digest(seat.token.encode(), token.encode("utf-8", "replace")):
                found = seat
        return found

    def is_instructor(self, token: str) -> bool:
        return hmac.compare_digest(self.instructor.encode(), token.encode("utf-8", "replace"))

    # --- lab operations, on the pool ---
    def _run(self, seat: Seat, what: str, job: Callable[[], None],
             state: str = "") -> Future[None]:
        """Run `job` on the pool, unless something already runs for the seat (then that is
        returned). `state`: the seat's state from now, so that the answer to the request that
        asked already says it (a reset is "stopping" before its turn comes)."""
        with self._lock:
            busy = self._busy.get(seat.number)
            if busy is not None and not busy.done():
                return busy
            if state:
                seat.state = state
            future = self._pool.submit(self._guarded, seat, what, job)
            self._busy[seat.number] = future
            return future

    def _guarded(self, seat: Seat, what: str, job: Callable[[], None]) -> None:
        try:
            job()
        except PortlabError as exc:
            self._set(seat, "failed", f"{what}: {exc.message}")
        except Exception as exc:  # a lab that cannot start must not take the server down
            self._set(seat, "failed", f"{what}: {type(exc).__name__}: {exc}")

    def _set(self, seat: Seat, state: str, problem: str = "") -> None:
        if state == "failed":
            seat.failed_at = time.time()
        seat.state = state
        seat.problem = printable(problem)[:500]

    def visit(self, seat: Seat) -> None:
        """The student opened the link (or their page polls): start the lab if it is not up,
        when fewer than `max_running` seats hold one; else the seat is queued, and a later
        visit starts it once a place is free. A lab that failed to start is tried again
        after RETRY_AFTER seconds (Reset tries at once)."""
        now = time.time()
        seat.last_seen = now
        if seat.state == "failed" and now - seat.failed_at < RETRY_AFTER:
            return
        if seat.state in ("waiting", "stopped", "failed", "queued"):
            with self._lock:
                room = self.running() < self.max_running
                if not room:
                    seat.state = "queued"
            if room:
                self.start(seat)

    def running(self) -> int:
        """Seats that hold a lab now, or are starting one."""
        return sum(1 for s in self.seats if s.state in UP or s.number in self._starting)

    def start(self, seat: Seat) -> Future[None]:
        def job() -> None:
            self._starting.discard(seat.number)
            self._set(seat, "starting")
            self._remove(seat)  # what an earlier start or stop left
            self.ops.up(self.lab, instance=seat.instance, student=seat.student, salt=self.salt)
            seat.started = time.time()
            self._set(seat, "ready")
        before = self._busy.get(seat.number)
        self._starting.add(seat.number)  # counted as running from now, not from the pool's turn
        future = self._run(seat, "starting the lab", job)
        if future is before:  # something else runs for this seat: no start was queued
            self._starting.discard(seat.number)
        return future

    def _remove(self, seat: Seat) -> bool:
        """Remove the seat's lab; False when none was up."""
        try:
            return self.ops.down(instance=seat.instance) is not None
        except UsageError:
            return False  # none is up

    def check(self, seat: Seat) -> Future[None]:
        """Run the lab's checks on the seat's lab; the result lands in seat.report."""
        def job() -> None:
            self._set(seat, "checking")
            try:
                report = self.ops.check(instance=seat.instance)
            except PortlabError as exc:  # could not check: said, and the lab stays
                seat.report = untrusted(f"portlab could not check: {exc.message}"
                                        + (f"\n{exc.hint}" if exc.hint else ""))
                self._set(seat, "ready")
                return
            seat.checks = {r.id: r.passed for r in report.results}
            seat.best |= {c for c, ok in seat.checks.items() if ok}
            seat.last_check = time.time()
            seat.report = untrusted(self.describe(report))
            self._set(seat, "ready")
        return self._run(seat, "checking", job)

    def reset(self, seat: Seat) -> Future[None]:
        """A fresh lab: the old one removed, a new one started (the work on it is gone)."""
        def job() -> None:
            self._close_terminals(seat)
            self._remove(seat)
            seat.checks, seat.report = {}, ""
            self._set(seat, "starting")
            self.ops.up(self.lab, instance=seat.instance, student=seat.student, salt=self.salt)
            seat.started = time.time()
            self._set(seat, "ready")
        return self._run(seat, "resetting the lab", job, state="stopping")

    def stop(self, seat: Seat) -> Future[None]:
        """Stop the seat's lab; the next visit starts a fresh one."""
        def job() -> None:
            self._close_terminals(seat)
            self._remove(seat)
            self._set(seat, "stopped")
        return self._run(seat, "stopping the lab", job, state="stopping")

    def _close_terminals(self, seat: Seat) -> None:
        for session in list(seat.terminals.values()):
            session.close()
        seat.terminals.clear()

    def idle(self, after: float, now: float | None = None) -> list[Seat]:
        """Stop the labs of seats nobody used for `after` seconds (no open terminal either)."""
        now = now or time.time()
        quiet = [s for s in self.seats if s.state == "ready" and not s.terminals
                 and now - max(s.last_seen, s.started) > after]
        for seat in quiet:
            self.stop(seat)
        return quiet

    def close(self, progress: Callable[[str], None] = lambda words: None) -> int:
        """Stop everything: terminals closed, every seat's lab removed (a few at a time, as
        they were started). Returns how many."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for seat in self.seats:
            self._close_terminals(seat)

        def remove(seat: Seat) -> bool:
            if seat.state == "waiting" or not self._remove(seat):
                return False
            progress(f"removed {seat.label}'s lab ({seat.instance})")
            return True

        with ThreadPoolExecutor(max_workers=self.workers) as removals:
            return sum(removals.map(remove, self.seats))

    # --- the trainer's view ---
    def table(self) -> list[dict[str, Any]]:
        now = time.time()
        return [s.summary(len(self.check_ids), now) for s in self.seats]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["seat", "student", "state", "passed", "total", *self.check_ids,
                         "last check"])
        for s in self.seats:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.last_check)) \
                if s.last_check else ""
            writer.writerow([s.number, _cell(s.label), s.state, len(s.best),
                             len(self.check_ids),
                             *("pass" if c in s.best else "" for c in self.check_ids), when])
        return out.getvalue()


def _as_terminal(report: Any) -> str:
    """A check's report as `portlab check` prints it, without colour."""
    from portlab.views import report as report_view

    return report_view.terminal(report, color=False)


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class TerminalSession:
    """One node's terminal of one seat: the program on the node, and who sees it (the
    student's page writes, the trainer's read-only views only read). Output is kept
    (SCROLLBACK bytes) for a page that opens it later."""

    def __init__(self, terminal: Any) -> None:
        self.terminal = terminal
        self.scrollback: deque[bytes] = deque()
        self.kept = 0
        self.readers: list[Callable[[bytes], None]] = []
        self.closed = False

    def output(self, data: bytes) -> None:
        self.scrollback.append(data)
        self.kept += len(data)
        while self.kept > SCROLLBACK and len(self.scrollback) > 1:
            self.kept -= len(self.scrollback.popleft())
        for reader in list(self.readers):
            reader(data)

    def history(self) -> bytes:
        return b"".join(self.scrollback)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.terminal.close()
