#!/usr/bin/env python3
"""portlab's classroom benchmark: how many students one machine serves with
`portlab classroom serve`, each with a working terminal and a Check that answers in time.

For each class size N it starts `portlab classroom serve LAB --seats N --port 0` (a real
server, in a process of its own) and N simulated students at once, each an asyncio task
doing what the student page (portlab/views/pages/classroom.js) does:

    open the link (GET /s/TOKEN), poll the seat's state until its lab is ready,
    fetch the brief, open the terminal (the websocket of the lab's first workplace) and
    wait for the shell's prompt: "time to a ready terminal", from the link to the prompt;
    then, for --minutes of steady state with every terminal kept open:
    press Check every 30 s (seats staggered over the 30 s), timing each Check from the
    request to the answer and keeping its result; type a command every ~10 s and time its
    echo; poll the state every 4 s as the page does.

The lab is left untouched, so Checks fail: a failing Check is a verdict, an answer like any
other. Errors are counted apart: HTTP errors (any answer but 200, a dropped connection, a
timeout) and "could not check" reports. A seat stayed usable when it got its terminal, had no
error, and every Check answered before its next one was due. Memory per seat is the seat
containers' memory use (as `docker stats` counts it: usage less inactive page cache, from
their cgroups) divided by N; beside it the server process's RSS. The steady state's CPU is
split between the server, the containers (where a Check's probes run), Docker's own
processes and the rest, to tell what limits a size: the machine's cores, or the server's
pool of lab workers (lab starts and Checks queue there, a few at a time), which shows as a
Check latency of about N times one Check's time divided by the pool's size.

The "first start" comes first: a fresh server with one seat and one student alone, as the
first student of a quiet morning sees it; beside it the same work by hand with the CLI
(`portlab up`, `portlab check`, `portlab down` of an instance of its own).

    bench/classroom.py --seats 5 10 20              3 minutes of steady state each
    bench/classroom.py --seats 5 10 20 --then 30    and 30 if 20 stayed usable (p95 Check < 30 s)
    bench/classroom.py --seats 10 --minutes 2 --lab nat --json out.json

It works in its own scope (PORTLAB_SCOPE=bench-class) and learner record (a temporary
XDG_STATE_HOME), stops each server with Ctrl-C (SIGINT), which removes every lab, and then
checks that no container or network of the scope is left. The server's stderr goes to a
file per run (printed at the end) and is searched for tracebacks. Run it on a quiet
machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SCOPE = "bench-class"
CHECK_EVERY = 30.0  # seconds between two Checks of one student
TYPE_EVERY = 10.0  # seconds between two commands typed in a terminal (about)
POLL_STARTING = 0.5  # seconds between two polls of the state while the lab starts
POLL_READY = 4.0  # seconds between two polls once ready (as the page does)
CHECK_GAP = 3.0  # the server refuses a second Check of a seat within this (portlab.web.app)
START_TIMEOUT = 900.0  # seconds from the link to a ready terminal before a seat gives up
PROMPT_TIMEOUT = 120.0  # seconds from the websocket to the prompt
ECHO_TIMEOUT = 30.0  # seconds for a typed command's echo
CHECK_TIMEOUT = 600.0  # seconds for one Check's answer
STOP_TIMEOUT = 900.0  # seconds for the server to remove every lab after Ctrl-C
PROMPT = b"root@"
MIB = 2**20


# --- pure helpers (tests/unit/test_bench_classroom.py) ------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of values, interpolated between the closest ranks (as
    numpy's default); NaN for no values."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Links:
    base: str  # http://127.0.0.1:PORT
    trainer: str | None
    seats: dict[int, str]  # seat number -> its link


LINK_SEAT = re.compile(r"^\s*seat\s+(\d+)\b.*?\s(https?://\S+/s/[A-Za-z0-9_-]+)\s*$")
LINK_TRAINER = re.compile(r"^\s*trainer:\s*(https?://\S+/t/[A-Za-z0-9_-]+)\s*$")


def parse_links(lines: Iterable[str]) -> Links:
    """The links `portlab classroom serve` prints: a trainer's and one per seat."""
    trainer, seats = None, {}
    for line in lines:
        if m := LINK_TRAINER.match(line):
            trainer = m.group(1)
        elif m := LINK_SEAT.match(line):
            seats[int(m.group(1))] = m.group(2)
    some = trainer or next(iter(seats.values()), "")
    base = re.sub(r"/[st]/[A-Za-z0-9_-]+$", "", some)
    return Links(base, trainer, seats)


CSRF = re.compile(r"<body\b[^>]*\bdata-csrf=\"([^\"]+)\"")


def csrf_of(page: str) -> str | None:
    """The CSRF token of a student page: the data-csrf attribute of its <body>."""
    m = CSRF.search(page)
    return m.group(1) if m else None


UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> float:
    """Bytes in a size as `docker stats` prints it: "12.5MiB", "1.2GiB", "0B", "3kB"."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in UNITS | {"": 1}:
        raise ValueError(f"not a size: {text!r}")
    return float(m.group(1)) * UNITS.get(m.group(2).lower(), 1)


def cgroup_memory(stat: str, usage: int) -> int:
    """A container's memory as `docker stats` counts it (Docker 20.10's CLI): its cgroup's
    usage less the inactive file cache, from memory.stat (cgroup v1 or v2)."""
    values = {}
    for line in stat.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[name] = int(value)
    for key in ("total_inactive_file", "inactive_file"):
        if key in values and values[key] < usage:
            return usage - values[key]
    return usage


def check_outcome(status: int, body: str) -> tuple[str, int | None, int | None]:
    """What one Check's answer was: ("verdict", passed, total) for a report, passing or not;
    ("could-not-check", ...) when the report says portlab could not check; ("http-error",
    None, None) for any other answer."""
    if status != 200:
        return "http-error", None, None
    try:
        state = json.loads(body)
        passed, total = int(state["passed"]), int(state["total"])
        report = str(state.get("report", ""))
    except (ValueError, KeyError, TypeError):
        return "http-error", None, None
    if "could not check" in report:
        return "could-not-check", passed, total
    return "verdict", passed, total


def spread(values: Sequence[float]) -> str:
    """p50 / p95 / max of values in seconds, or a dash."""
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q):.2f}" for q in (50, 95, 100))


# --- the machine ---------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores; /proc/stat), in s."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU time of a process (and of the children it waited for), in s."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    utime, stime, cutime, cstime = (int(x) for x in after_name[11:15])
    return (utime + stime + (cutime + cstime if children else 0)) / os.sysconf("SC_CLK_TCK")


ENGINE = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc",
          "docker-proxy", "docker-init")


def process_times() -> dict[int, tuple[str, float]]:
    """Every process's name and own CPU seconds so far (its children's aside)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(proc.name)] = ((proc / "comm").read_text().strip(),
                                         process_cpu_seconds(int(proc.name), children=False))
    return found


def busiest(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
            seconds: float, top: int = 4) -> list[tuple[str, float]]:
    """The names of the processes that used the most CPU between two process_times(), with
    the cores they kept busy on average (processes of one name added up; those that ended
    in between are not seen)."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        was = before.get(pid)
        used[name] = used.get(name, 0.0) + cpu - (was[1] if was and was[0] == name else 0.0)
    ranked = sorted(used.items(), key=lambda item: -item[1])[:top]
    return [(name, cpu / seconds) for name, cpu in ranked if cpu > 0]


def cpu_shares(server: int, procs: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds so far: the machine's, the server's, the containers' (their cgroups: a
    Check's probes run there), Docker's own processes (dockerd, containerd, the shims), and
    this benchmark's."""
    # their own time: a shim's waited children are the containers' processes
    engine = sum(cpu for name, cpu in procs.values() if name in ENGINE)
    containers = math.nan
    for path in ("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage",
                 "/sys/fs/cgroup/cpu,cpuacct/docker/cpuacct.usage"):
        with contextlib.suppress(OSError, ValueError):
            containers = int(Path(path).read_text()) / 1e9
            break
    return {"machine": cpu_seconds(), "server": process_cpu_seconds(server),
            "containers": containers, "docker": engine,
            "students": process_cpu_seconds(os.getpid())}  # this benchmark's clients


def rss_mib(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    found = {"VmRSS": math.nan, "VmHWM": math.nan}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found["VmRSS"], found["VmHWM"]


def docker(*args: str) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    return proc.stdout if proc.returncode == 0 else ""


def scope_containers(scope: str) -> list[tuple[str, str]]:
    """(id, name) of the running containers whose name contains the scope."""
    out = docker("ps", "--no-trunc", "--filter", f"name={scope}", "--format",
                 "{{.ID}}\t{{.Names}}")
    return [(i, n) for i, _, n in (line.partition("\t") for line in out.splitlines()) if i]


def container_memory(container_id: str) -> int | None:
    for folder in (f"/sys/fs/cgroup/memory/docker/{container_id}",
                   f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"):
        for usage_file in ("memory.usage_in_bytes", "memory.current"):
            try:
                usage = int(Path(folder, usage_file).read_text())
                stat = Path(folder, "memory.stat").read_text()
            except (OSError, ValueError):
                continue
            return cgroup_memory(stat, usage)
    return None


def seats_memory(scope: str) -> tuple[float, int]:
    """The memory of the scope's containers (bytes), and how many containers."""
    found = scope_containers(scope)
    total, missing = 0.0, []
    for cid, name in found:
        mem = container_memory(cid)
        if mem is None:
            missing.append(name)
        else:
            total += mem
    if missing:  # no cgroup files here: ask `docker stats`
        out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *missing)
        for line in out.splitlines():
            with contextlib.suppress(ValueError, IndexError):
                total += parse_size(line.split("\t")[1].split("/")[0])
    return total, len(found)


def left_behind(scope: str) -> list[str]:
    """Containers (running or not) and networks of the scope: by label, and by name."""
    names = set()
    for flt in (f"label=portlab.scope={scope}", f"name={scope}"):
        names |= {f"container {n}" for n in docker("ps", "-a", "--filter", flt, "--format",
                                                   "{{.Names}}").split()}
        names |= {f"network {n}" for n in docker("network", "ls", "--filter", flt, "--format",
                                                 "{{.Name}}").split()}
    return sorted(names)


def machine() -> dict[str, Any]:
    info = json.loads(docker("info", "--format", "{{json .}}") or "{}")
    return {"cpus": os.cpu_count(), "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
            "kernel": platform.release(), "docker": info.get("ServerVersion"),
            "cgroup": info.get("CgroupVersion"), "python": platform.python_version()}


# --- the server ----------------------------------------------------------------------------------


class Server:
    """`portlab classroom serve LAB --seats N --port 0`, its stderr in a file."""

    def __init__(self, lab: str, seats: int, log: Path, env: dict[str, str]) -> None:
        self.lab, self.seats, self.log, self.env = lab, seats, log, env
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout: list[str] = []
        self.links = Links("", None, {})
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 300.0) -> Links:
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "portlab", "classroom", "serve", self.lab,
                "--seats", str(self.seats), "--port", "0", cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while len(self.links.seats) < self.seats:
            left = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, left))
            except asyncio.TimeoutError:
                line = b""
            if not line:
                raise RuntimeError(f"the server printed {len(self.links.seats)} of "
                                   f"{self.seats} links (see {self.log})")
            self.stdout.append(line.decode(errors="replace").rstrip("\n"))
            self.links = parse_links(self.stdout)
        self._reader = asyncio.ensure_future(self._read_rest())
        return self.links

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.stdout.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> tuple[float, int | None]:
        """Ctrl-C: the server removes every lab. Returns (seconds it took, exit status)."""
        if self.proc is None or self.proc.returncode is not None:
            return 0.0, self.proc.returncode if self.proc else None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT)
        except asyncio.TimeoutError:
            self.proc.kill()  # what it left is removed below, and said
            code = await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._reader, 10)
        return time.monotonic() - start, code


def stderr_problems(text: str) -> list[str]:
    """Lines of a server's stderr that say something went wrong (tracebacks, errors)."""
    bad = re.compile(r"Traceback|Error|Exception|error:|failed|Task was destroyed|"
                     r"never retrieved|Unclosed|WARNING|CRITICAL", re.IGNORECASE)
    return [line for line in text.splitlines() if bad.search(line)]


# --- a student -----------------------------------------------------------------------------------


class Terminal:
    """A terminal's websocket: every byte it sent, and a way to wait for some."""

    def __init__(self, ws: Any) -> None:  # aiohttp.ClientWebSocketResponse (generic from 3.11)
        self.ws = ws
        self.data = bytearray()
        self.closed = False
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.data += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self.data += msg.data.encode()
                self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.closed = True
            self._changed.set()

    async def wait_for(self, needle: bytes, start: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.data.find(needle, start) < 0:
            if self.closed:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                return False
        return True

    async def type(self, text: str) -> None:
        await self.ws.send_str(json.dumps({"type": "input", "data": text}))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@dataclass
class CheckResult:
    sent: float  # seconds into the steady state
    latency: float
    outcome: str  # see check_outcome; "timeout" when no answer came
    passed: int | None = None
    total: int | None = None


@dataclass
class Student:
    seat: int
    link: str = field(repr=False)
    csrf: str = field(default="", repr=False)
    node: str = ""
    ready_state_s: float | None = None  # link -> the state said ready
    terminal_s: float | None = None  # link -> the first prompt
    checks: list[CheckResult] = field(default_factory=list)
    late: int = 0  # Checks answered after the next one was due
    echoes: list[float] = field(default_factory=list)  # typed -> echoed
    replies: list[float] = field(default_factory=list)  # typed -> the command's output
    http_errors: list[str] = field(default_factory=list)  # besides the Checks'
    terminal_errors: list[str] = field(default_factory=list)
    start_error: str = ""

    @property
    def check_errors(self) -> int:
        return sum(c.outcome in ("http-error", "timeout") for c in self.checks)

    @property
    def could_not_check(self) -> int:
        return sum(c.outcome == "could-not-check" for c in self.checks)

    @property
    def usable(self) -> bool:
        return (self.terminal_s is not None and not self.start_error and not self.http_errors
                and not self.terminal_errors and not self.check_errors
                and not self.could_not_check and not self.late)


class Steady:
    """When the steady state starts (every student's start is over) and ends."""

    def __init__(self, students: int, minutes: float) -> None:
        self.waiting = students
        self.minutes = minutes
        self.began = asyncio.Event()
        self.start = 0.0
        self.end = 0.0

    def started_one(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.start = time.monotonic()
            self.end = self.start + self.minutes * 60
            self.began.set()


async def simulate(student: Student, base: str, steady: Steady, offset: float,
                   nodes_hint: str | None) -> None:
    """One student: the link, the lab, the terminal, then Checks, typing and polls."""
    timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT, connect=60)
    headers = {"Origin": base}  # as a browser sends on POSTs and websockets
    term: Terminal | None = None
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
        try:
            try:
                term = await start(student, http, nodes_hint)
            finally:
                steady.started_one()
            await steady.began.wait()
            if term is not None and not student.start_error:
                await asyncio.gather(checking(student, http, steady, offset),
                                     typing(student, term, steady),
                                     polling(student, http, steady))
        finally:
            if term is not None:
                await term.close()


async def start(student: Student, http: aiohttp.ClientSession,
                nodes_hint: str | None) -> Terminal | None:
    opened = time.monotonic()
    try:
        async with http.get(student.link) as r:
            page = await r.text()
            if r.status != 200:
                student.start_error = f"the page: HTTP {r.status}"
                return None
        csrf = csrf_of(page)
        if csrf is None:
            student.start_error = "the page has no data-csrf"
            return None
        student.csrf = csrf
        nodes = re.search(r"data-nodes=\"([^\"]*)\"", page)
        student.node = nodes_hint or (nodes.group(1).split()[0] if nodes else "router")
        while True:  # the page polls until the lab is ready
            async with http.get(f"{student.link}/state") as r:
                if r.status != 200:
                    student.http_errors.append(f"state while starting: HTTP {r.status}")
                else:
                    state = await r.json()
                    if state["state"] in ("ready", "checking"):
                        break
                    if state["state"] == "failed":
                        student.start_error = f"the lab failed: {state.get('problem')}"
                        return None
            if time.monotonic() - opened > START_TIMEOUT:
                student.start_error = f"not ready after {START_TIMEOUT:.0f} s"
                return None
            await asyncio.sleep(POLL_STARTING)
        student.ready_state_s = time.monotonic() - opened
        brief = asyncio.ensure_future(fetch(student, http, "brief"))
        ws = await http.ws_connect(f"{student.link.replace('http', 'ws', 1)}/term/"
                                   f"{student.node}?rows=24&cols=80")
        term = Terminal(ws)
        if not await term.wait_for(PROMPT, 0, PROMPT_TIMEOUT):
            student.start_error = ("the terminal closed before its prompt" if term.closed
                                   else f"no prompt after {PROMPT_TIMEOUT:.0f} s")
            return term
        student.terminal_s = time.monotonic() - opened
        await brief
        return term
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, ValueError) as exc:
        student.start_error = f"{type(exc).__name__}: {exc}"
        return None


async def fetch(student: Student, http: aiohttp.ClientSession, what: str) -> None:
    """GET the seat's `what` (brief, state), as its page does; an error is recorded."""
    try:
        async with http.get(f"{student.link}/{what}") as r:
            await r.read()
            if r.status != 200:
                student.http_errors.append(f"{what}: HTTP {r.status}")
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        student.http_errors.append(f"{what}: {type(exc).__name__}")


async def checking(student: Student, http: aiohttp.ClientSession, steady: Steady,
                   offset: float) -> None:
    """Check every CHECK_EVERY s from offset on, until the steady state ends."""
    due = steady.start + offset
    answered = 0.0
    while due < steady.end:
        if answered > due:
            student.late += 1  # the last one answered after this one was due
        await asyncio.sleep(max(0.0, due - time.monotonic(), answered + CHECK_GAP + 0.1
                                - time.monotonic()))
        sent = time.monotonic()
        try:
            async with http.post(f"{student.link}/check",
                                 headers={"X-Portlab-CSRF": student.csrf}) as r:
                body = await r.text()
                outcome, passed, total = check_outcome(r.status, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            outcome, passed, total = "timeout", None, None
        answered = time.monotonic()
        student.checks.append(CheckResult(sent - steady.start, answered - sent, outcome,
                                          passed, total))
        due += CHECK_EVERY


async def typing(student: Student, term: Terminal, steady: Steady) -> None:
    """A short command every ~TYPE_EVERY s: the time to its echo, and to its output."""
    rng = random.Random(student.seat)
    await asyncio.sleep(rng.uniform(0, TYPE_EVERY))
    k = 0
    while time.monotonic() < steady.end:
        k += 1
        command = f"echo pl{student.seat}x$(({k}*1))y"  # typed: $((..)); its output: pl1x3y
        mark = len(term.data)
        sent = time.monotonic()
        try:
            await term.type(f"{command}\r")
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            student.terminal_errors.append(f"typing: {type(exc).__name__}")
            return
        if not await term.wait_for(command.encode(), mark, ECHO_TIMEOUT):
            student.terminal_errors.append("the terminal closed" if term.closed
                                           else f"no echo in {ECHO_TIMEOUT:.0f} s")
            return
        student.echoes.append(time.monotonic() - sent)
        if await term.wait_for(f"pl{student.seat}x{k}y".encode(), mark, ECHO_TIMEOUT):
            student.replies.append(time.monotonic() - sent)
        await asyncio.sleep(max(0.0, sent + rng.uniform(0.8, 1.2) * TYPE_EVERY
                                - time.monotonic()))


async def polling(student: Student, http: aiohttp.ClientSession, steady: Steady) -> None:
    """The page's poll of its seat's state, every POLL_READY s once the lab is ready."""
    while time.monotonic() + POLL_READY < steady.end:
        await asyncio.sleep(POLL_READY)
        await fetch(student, http, "state")


# --- one class -----------------------------------------------------------------------------------


def server_env(state: str) -> dict[str, str]:
    return {**os.environ, "PORTLAB_SCOPE": SCOPE, "XDG_STATE_HOME": state,
            "PYTHONUNBUFFERED": "1"}


async def run_class(n: int, lab: str, minutes: float, logs: Path, state: str,
                    node: str | None) -> dict[str, Any]:
    """N students at once on a fresh server; every figure of the run."""
    log = logs / f"server-{n}-seats.stderr"
    server = Server(lab, n, log, server_env(state))
    launched = time.monotonic()
    cpu0 = cpu_seconds()
    result: dict[str, Any] = {"seats": n, "lab": lab, "minutes": minutes, "log": str(log)}
    students: list[Student] = []
    try:
        links = await server.start()
        result["server_up_s"] = time.monotonic() - launched
        students = [Student(k, links.seats[k]) for k in sorted(links.seats)]
        steady = Steady(len(students), minutes)
        tasks = [asyncio.ensure_future(simulate(s, links.base, steady,
                                                CHECK_EVERY * i / len(students), node))
                 for i, s in enumerate(students)]
        opened = time.monotonic()
        await steady.began.wait()
        result["all_started_s"] = steady.start - opened
        procs_started = process_times()
        cpu_started = cpu_shares(server.pid, procs_started)
        samples: list[tuple[float, int]] = []
        rss: list[float] = []
        while time.monotonic() < steady.end:  # memory every 30 s, from the first minute on
            await asyncio.sleep(min(30.0, max(0.0, steady.end - time.monotonic())))
            mem, containers = await asyncio.to_thread(seats_memory, SCOPE)
            samples.append((mem, containers))
            rss.append(rss_mib(server.pid)[0])
        steady_s = time.monotonic() - steady.start
        procs_ended = process_times()
        cpu_ended = cpu_shares(server.pid, procs_ended)
        cpu = {k: (cpu_ended[k] - cpu_started[k]) / steady_s for k in cpu_ended}
        cpu["other"] = cpu["machine"] - sum(v for k, v in cpu.items() if k != "machine")
        await asyncio.gather(*tasks)
        rss_now, rss_peak = rss_mib(server.pid)
        cores = os.cpu_count() or 1
        result.update({
            "start_cpu_busy": (cpu_started["machine"] - cpu0) / (steady.start - launched) / cores,
            "steady_cpu_busy": cpu["machine"] / cores,
            "steady_cores": cpu,  # cores busy on average, by whom
            "server_cpu_cores": cpu["server"],
            "busiest": busiest(procs_started, procs_ended, steady_s),
            "load_1m": os.getloadavg()[0],
            "memory_per_seat_mib": max((m for m, _ in samples), default=0) / n / MIB,
            "containers": max((c for _, c in samples), default=0),
            "server_rss_mib": rss[-1] if rss else rss_now,  # at the end, every terminal open
            "server_rss_peak_mib": max([rss_peak, *rss, rss_now]),  # VmHWM lags a little
        })
    finally:
        stop_s, code = await server.stop()
        result["stop_s"], result["server_exit"] = stop_s, code
        result["server_said"] = [line for line in server.stdout if line.startswith("Stopped")]
        result["left_behind"] = left_behind(SCOPE)
        if result["left_behind"]:  # never leave them: remove them, and say so
            subprocess.run([sys.executable, "-m", "portlab", "down", "--all"], cwd=ROOT,
                           env=server_env(state), capture_output=True, timeout=600)
            result["still_left"] = left_behind(SCOPE)
        result["stderr_problems"] = stderr_problems(log.read_text(errors="replace"))
    result["students"] = [{k: v for k, v in asdict(s).items() if k not in ("link", "csrf")}
                          | {"usable": s.usable} for s in students]
    result.update(summarise(students))
    return result


def summarise(students: list[Student]) -> dict[str, Any]:
    terminals = [s.terminal_s for s in students if s.terminal_s is not None]
    checks = [c for s in students for c in s.checks]
    answered = [c.latency for c in checks if c.outcome != "timeout"]
    verdicts = [c for c in checks if c.outcome == "verdict"]
    return {
        "terminal_s": terminals,
        "first_terminal_s": min(terminals, default=math.nan),
        "ready_state_s": [s.ready_state_s for s in students if s.ready_state_s is not None],
        "check_s": answered,
        "checks_done": len(checks),
        "verdicts": len(verdicts),
        "passing_checks": sorted({f"{c.passed}/{c.total}" for c in verdicts}),
        "check_http_errors": sum(s.check_errors for s in students),
        "could_not_check": sum(s.could_not_check for s in students),
        "other_http_errors": sum(len(s.http_errors) for s in students),
        "terminal_errors": sum(len(s.terminal_errors) for s in students),
        "start_errors": [f"seat {s.seat}: {s.start_error}" for s in students if s.start_error],
        "late_checks": sum(s.late for s in students),
        "echo_s": [e for s in students for e in s.echoes],
        "reply_s": [e for s in students for e in s.replies],
        "usable_seats": sum(s.usable for s in students),
        "all_usable": bool(students) and all(s.usable for s in students),
        "error_samples": sorted({e for s in students
                                 for e in [*s.http_errors, *s.terminal_errors]})[:5],
    }


def print_class(r: dict[str, Any]) -> None:
    n = r["seats"]
    errors = r["check_http_errors"] + r["other_http_errors"]
    print(f"\n{n} seats of {r['lab']}, {r['minutes']:g} min of steady state "
          f"(p50 / p95 / max, seconds):")
    rows = [
        ("server up", f"{r.get('server_up_s', math.nan):.2f} (launch to links printed)"),
        ("first ready terminal", f"{r['first_terminal_s']:.2f} (the quickest of {n})"),
        ("time to ready terminal", f"{spread(r['terminal_s'])}   "
                                   f"({len(r['terminal_s'])} of {n}; lab ready "
                                   f"{spread(r['ready_state_s'])})"),
        ("all seats started", f"{r.get('all_started_s', math.nan):.1f} s, machine CPU "
                              f"{r.get('start_cpu_busy', math.nan):.0%} busy meanwhile"),
        ("Check latency", f"{spread(r['check_s'])}   (every {CHECK_EVERY:.0f} s a seat, "
                          f"lab untouched)"),
        ("checks done", f"{r['checks_done']} ({r['verdicts']} verdicts: "
                        f"{', '.join(r['passing_checks']) or '-'} passed)"),
        ("errors", f"{errors} HTTP ({r['check_http_errors']} of Checks), "
                   f"{r['could_not_check']} could not check, {r['terminal_errors']} terminal, "
                   f"{len(r['start_errors'])} starts"),
        ("late Checks", f"{r['late_checks']} answered after the next was due"),
        ("terminal echo", f"{spread(r['echo_s'])}   (command output "
                          f"{spread(r['reply_s'])}; {len(r['echo_s'])} typed)"),
        ("memory per seat", f"{r.get('memory_per_seat_mib', math.nan):.1f} MiB "
                            f"({r.get('containers', 0)} containers of the scope)"),
        ("server RSS", f"{r.get('server_rss_mib', math.nan):.0f} MiB (peak "
                       f"{r.get('server_rss_peak_mib', math.nan):.0f} MiB)"),
        ("CPU in steady state", f"machine {r.get('steady_cpu_busy', math.nan):.0%} busy, "
                                f"load {r.get('load_1m', math.nan):.1f}; cores: " + ", ".join(
                                    f"{k} {v:.2f}" for k, v in r.get("steady_cores", {}).items()
                                    if k != "machine")),
        ("busiest processes", ", ".join(f"{name} {cores:.2f}" for name, cores
                                        in r.get("busiest", [])) + " (cores, steady state)"),
        ("Ctrl-C", f"{r['stop_s']:.1f} s to remove every lab (exit {r['server_exit']}; "
                   f"{' '.join(r['server_said']) or 'said nothing'})"),
        ("every seat usable", "yes" if r["all_usable"] else
         f"NO ({r['usable_seats']} of {n})"),
    ]
    for name, value in rows:
        print(f"  {name:<24}{value}")
    for line in r["start_errors"][:5] + r["error_samples"]:
        print(f"  error: {line}")
    if r["left_behind"]:
        print(f"  LEFT BEHIND after Ctrl-C: {', '.join(r['left_behind'])}"
              + (f"; still after `portlab down --all`: {', '.join(r['still_left'])}"
                 if r.get("still_left") else ""))
    problems = r["stderr_problems"]
    print(f"  server stderr: {len(problems)} lines of errors or warnings ({r['log']})")
    for line in list(dict.fromkeys(problems))[:8]:  # the first of each kind
        print(f"    {line[:160]}")


def print_summary(rs: list[dict[str, Any]]) -> None:
    print("\nseats  ready terminal s         Check latency s          checks  errors  "
          "MiB/seat  server RSS  usable")
    print("       p50 / p95 / max          p50 / p95 / max")
    for r in rs:
        errors = (r["check_http_errors"] + r["other_http_errors"] + r["could_not_check"]
                  + r["terminal_errors"] + len(r["start_errors"]))
        print(f"{r['seats']:>5}  {spread(r['terminal_s']):<23}  {spread(r['check_s']):<23}  "
              f"{r['checks_done']:>6}  {errors:>6}  "
              f"{r.get('memory_per_seat_mib', math.nan):>8.1f}  "
              f"{r.get('server_rss_mib', math.nan):>6.0f} MiB  "
              f"{'yes' if r['all_usable'] else 'NO'}"
              + ("" if r["all_usable"] else f" ({r['late_checks']} late)"))


# --- the first start, and by hand ----------------------------------------------------------------


async def first_start(lab: str, logs: Path, state: str, node: str | None) -> dict[str, Any]:
    """One seat, one student, on a fresh server: the link to a ready terminal, then three
    Checks; beside them `portlab up`, `portlab check` and `portlab down` by hand."""
    r = await run_class(1, lab, (2 * CHECK_EVERY + 5) / 60, logs, state, node)
    env = server_env(state)
    portlab = [sys.executable, "-m", "portlab"]

    def timed(*args: str) -> tuple[float, int]:
        start = time.monotonic()
        proc = subprocess.run([*portlab, *args], cwd=ROOT, env=env, capture_output=True)
        return time.monotonic() - start, proc.returncode

    instance = "hand-1"
    up_s, up_code = await asyncio.to_thread(timed, "up", lab, "-i", instance, "-q")
    checks = [await asyncio.to_thread(timed, "check", "-i", instance, "--json")
              for _ in range(3)]
    down_s, down_code = await asyncio.to_thread(timed, "down", "-i", instance)
    r["by_hand"] = {"up_s": up_s, "up_ok": up_code == 0, "check_s": [s for s, _ in checks],
                    "down_s": down_s, "down_ok": down_code == 0}
    r["left_behind_by_hand"] = left_behind(SCOPE)
    return r


def print_first(r: dict[str, Any]) -> None:
    hand = r["by_hand"]
    checks = r["check_s"]
    print(f"\nfirst start: a fresh server, one seat of {r['lab']}, one student alone "
          f"(the node image already built)")
    print(f"  server up               {r.get('server_up_s', math.nan):6.2f} s (launch to links "
          f"printed)")
    print(f"  link to ready terminal  {r['first_terminal_s']:6.2f} s (lab ready after "
          f"{spread(r['ready_state_s']).split(' / ')[0]} s)   by hand: `portlab up` "
          f"{hand['up_s']:.2f} s" + ("" if hand["up_ok"] else " (FAILED)"))
    print(f"  Check                   {statistics.median(checks) if checks else math.nan:6.2f} s "
          f"(median of {len(checks)})   by hand: `portlab check` "
          f"{statistics.median(hand['check_s']):.2f} s (median of {len(hand['check_s'])}, "
          "a new process each)")
    print(f"  terminal echo            {spread(r['echo_s'])} s (p50 / p95 / max)")
    print(f"  Ctrl-C                  {r['stop_s']:6.2f} s to remove its lab   by hand: "
          f"`portlab down` {hand['down_s']:.2f} s")
    print(f"  memory                  {r.get('memory_per_seat_mib', math.nan):.1f} MiB the "
          f"seat, server RSS {r.get('server_rss_mib', math.nan):.0f} MiB; usable: "
          f"{'yes' if r['all_usable'] else 'NO'}")
    if r["left_behind"] or r["left_behind_by_hand"]:
        print(f"  LEFT BEHIND: {', '.join(r['left_behind'] + r['left_behind_by_hand'])}")


# --- main ----------------------------------------------------------------------------------------


def good_enough(r: dict[str, Any]) -> bool:
    """A size worth growing from: every seat usable, and p95 Check latency under 30 s."""
    return r["all_usable"] and percentile(r["check_s"], 95) < CHECK_EVERY


async def bench(args: argparse.Namespace, logs: Path, state: str) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "first": None, "classes": []}
    m = results["machine"]
    print(f"machine: {m['cpus']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}, "
          f"Docker {m['docker']} (cgroup v{m['cgroup']}), Python {m['python']}")
    if left_behind(SCOPE):
        sys.exit(f"bench: the scope {SCOPE} is in use: {', '.join(left_behind(SCOPE))} "
                 f"(PORTLAB_SCOPE={SCOPE} portlab down --all)")
    if not args.no_first:
        results["first"] = await first_start(args.lab, logs, state, args.node)
        print_first(results["first"])
    sizes = list(args.seats)
    k = 0
    while k < len(sizes):
        r = await run_class(sizes[k], args.lab, args.minutes, logs, state, args.node)
        results["classes"].append(r)
        print_class(r)
        k += 1
        if k == len(sizes) and args.then and args.then not in sizes:
            if good_enough(r):
                sizes.append(args.then)
            else:
                print(f"\n(not trying {args.then} seats: {sizes[-1]} did not stay usable "
                      f"with p95 Check latency under {CHECK_EVERY:.0f} s)")
    print_summary(results["classes"])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seats", type=int, nargs="+", default=[5, 10, 20], metavar="N",
                        help="class sizes, one server each (default: 5 10 20)")
    parser.add_argument("--then", type=int, default=0, metavar="N",
                        help="also N seats, if the last --seats size stayed usable with p95 "
                             "Check latency under 30 s")
    parser.add_argument("--minutes", type=float, default=3.0, metavar="M",
                        help="minutes of steady state per size (default 3)")
    parser.add_argument("--lab", default="forwarding", help="the lab (default: forwarding)")
    parser.add_argument("--node", help="the node whose terminal students open (default: the "
                                       "page's first)")
    parser.add_argument("--no-first", action="store_true",
                        help="skip the first start (one student alone, and by hand)")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="where the servers' stderr goes (default: a new temporary folder)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args()

    logs = args.logs or Path(tempfile.mkdtemp(prefix="portlab-classroom-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    state = tempfile.mkdtemp(prefix="portlab-classroom-bench-state-")
    try:
        results = asyncio.run(bench(args, logs, state))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(state, ignore_errors=True)
        print(f"\nservers' stderr: {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
