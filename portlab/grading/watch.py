"""The limits a grade is held to, watched in the background: the whole grade's time, each
touched node's disk, and processes without end. Over a limit the watch removes the instance
(so that every command in it ends) and the grade fails, saying which limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from portlab.backend.base import NodeInfo
from portlab.errors import PortlabError
from portlab.model.plan import Limits
from portlab.progress import Quiet
from portlab.runtime import Instance

LOOK_APART = 0.2  # seconds between the looks at a node after the submission ran
CROWDED = 64  # processes on a node (as its engine counts them) that call for a few more looks
LOOK_MORE = 10  # how many more: 2 s in all
DISK_AFTER = 1.0  # a file's command has run this long: look at the disk ...
DISK_BUSY = 1.5  # ... this often while it runs,
DISK_IDLE = 5.0  # and this often otherwise
PROCESSES_EVERY = 1.0  # seconds between counts of the touched nodes' processes, all along


@dataclass(frozen=True)
class Settings:
    limits: Limits = field(default_factory=Limits)
    time_limit: float = 300.0  # seconds for the whole grade
    disk_mib: int = 256  # what a submission may write to the disk of one node
    watch_every: float = 0.25  # seconds between the watch's looks at the clock


class Stopped(Exception):
    """The grade was stopped by one of its limits; `reason` says which, for the student."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Watch:
    """Holds a grade to its time limit and each touched node to its disk cap, in the
    background. Over a limit it removes the instance (so every command in it ends)."""

    def __init__(self, inst: Instance, nodes: list[str], settings: Settings,
                 started: float) -> None:
        self.inst = inst
        self.nodes = sorted(set(nodes))
        self.settings = settings
        self.deadline = started + settings.time_limit
        self.reason = ""
        self._busy_since: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop looking; a look at the disk on its way (Docker walks the node's files, which
        takes seconds when they are many) is waited for, and its verdict counts."""
        self._done.set()
        self._thread.join(timeout=60)

    def stop_grade(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            try:
                self.inst.backend.remove(self.inst.name, Quiet())
            except PortlabError:
                pass

    def raise_if_stopped(self) -> None:
        if self.reason:
            raise Stopped(self.reason)

    def disk(self, nodes: set[str]) -> None:
        """Look at the disk of each node now (side by side), and stop the grade if one is over
        its cap."""
        cap = self.settings.disk_mib * 2**20
        names = sorted(nodes)
        with ThreadPoolExecutor(max(1, len(names))) as pool:
            reasons = [r for r in pool.map(lambda n: self._over(n, cap), names) if r]
        if reasons:
            self.stop_grade(reasons[0])
            raise Stopped(reasons[0])

    def look(self, nodes: set[str], times: int = 1) -> None:
        """Look at once (not only in the background) whether a node is over a limit, `times`
        times a moment apart (what a submission left running may still be growing)."""
        k = 0
        while True:
            self.raise_if_stopped()
            crowded = False
            for name in sorted(nodes):
                reason, count = self._forked(name)
                if reason:
                    self.stop_grade(reason)
                    raise Stopped(reason)
                crowded = crowded or count >= CROWDED
            k += 1
            # Far more processes than a node runs, not yet at the limit: something may still
            # be forking (on a busy machine a fork bomb grows slowly), so look again.
            if k >= times + (LOOK_MORE if crowded else 0):
                return
            time.sleep(LOOK_APART)

    def running(self, busy: bool) -> None:
        """A submitted file's command started (busy) or ended: while one runs long, its
        nodes' disks are looked at often."""
        self._busy_since = time.monotonic() if busy else None

    def _run(self) -> None:
        # Docker computes a container's disk use by walking its whole file system (about
        # 0.4 CPU-seconds each time here): looked at while a file has run for more than
        # DISK_AFTER seconds, then every DISK_BUSY; otherwise every DISK_IDLE. A grade that
        # takes its usual few seconds pays nothing for it.
        cap = self.settings.disk_mib * 2**20
        last = counted = time.monotonic()
        while not self._done.wait(self.settings.watch_every):
            now = time.monotonic()
            if now > self.deadline:
                self.stop_grade(f"the grade took longer than {self.settings.time_limit:g} s")
                return
            if now - counted >= PROCESSES_EVERY:
                # A fork bomb's processes rise to the node's limit and may die back (a fork
                # refused, a shell gives up) before the look after its file, on a busy
                # machine: counted all along, its peak is seen (`docker top`: no exec).
                counted = now
                for name in self.nodes:
                    reason, _ = self._forked(name)
                    if reason:
                        self.stop_grade(reason)
                        return
            since = self._busy_since
            due = DISK_BUSY if since is not None and now - since > DISK_AFTER else DISK_IDLE
            if now - last < due:
                continue
            last = now
            for name in self.nodes:
                reason = self._over(name, cap)
                if reason:
                    self.stop_grade(reason)
                    return

    def _over(self, name: str, cap: int) -> str:
        """Why the node is over a limit, or ""."""
        node: NodeInfo | None = self.inst.info.nodes.get(name)
        if node is None:
            return ""
        try:
            used = self.inst.backend.written(node)
        except PortlabError:
            return ""  # the node is gone: the grade says so itself
        if used > cap:
            return (f"the submission wrote more than {self.settings.disk_mib} MiB to the disk "
                    f"of {name} ({used // 2**20} MiB)")
        return ""  # processes: counted apart (`_forked`), all along and after each step

    def _forked(self, name: str) -> tuple[str, int]:
        """Why the node is running processes without end (a fork bomb, hundreds of busy
        loops), or "", and how many it runs. Asked of the engine (`backend.processes`), never
        of the node: a node busy with hundreds of processes on its CPU share would answer a
        command run in it only after minutes."""
        node = self.inst.info.nodes.get(name)
        if node is None:
            return "", 0
        most = self.settings.limits.pids
        try:
            count = self.inst.backend.processes(node)
        except PortlabError:
            return "", 0  # the node is gone: the grade says so itself
        if count >= most // 2:
            return (f"the submission started processes without end on {name} ({count} of its "
                    f"limit of {most})"), count
        return "", count
