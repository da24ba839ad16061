"""Readiness: every node prints `portlab-ready` once set up (portlab/node/nodeinit.py).

portlab follows each node's log through the backend and waits for that line;
no polling sleeps. A node that fails prints why and `portlab-failed`, then
stops, which ends its log.

Start order: a node with `after: [other, ...]` waits, before its setup, for
the file GO_FILE; portlab writes it there the moment every node it starts
after has said `portlab-ready`. The engine starts all containers at once; the
order is kept here, by the same logs, on every backend.
"""

from __future__ import annotations

import threading

from portlab.backend.base import NodeInfo
from portlab.errors import BackendUnreachable, RuntimeProblem
from portlab.model.types import Lab
from portlab.progress import Progress
from portlab.runtime.instance import Instance

READY_MARK = b"portlab-ready"
FAILED_MARK = b"portlab-failed"
READY_TIMEOUT = 180.0  # a node's own deadline (nodeinit.py) is 150 s
GO_FILE = "/run/portlab/go"  # nodeinit.py waits for it on a node with `after:`


def is_ready(inst: Instance, node: NodeInfo) -> bool:
    """Whether the node said it is ready (in the last lines of its log)."""
    return node.running and READY_MARK in b"".join(inst.backend.logs(node, tail=50))


def wait_ready(inst: Instance, progress: Progress, timeout: float = READY_TIMEOUT, *,
               lab: Lab | None = None) -> None:
    """Wait for every node's "portlab-ready" line by following its log; with the lab, start
    each node that waits for others (`after:`) as soon as they are ready."""
    after = {n.name: set(n.after) for n in lab.nodes if n.after} if lab is not None else {}
    released: set[str] = set()
    results: dict[str, tuple[bool, str]] = {}
    done = threading.Event()
    lost: list[BackendUnreachable] = []  # the engine went away while following a log
    lock = threading.Lock()
    nodes = dict(inst.nodes)

    def follow(node: NodeInfo) -> None:
        ok, why = False, ""
        buf = b""
        try:
            # A node that fails prints why (stderr) and the failed mark (stdout), then exits,
            # which ends this stream: read to the end, since the two streams may arrive in
            # either order.
            for chunk in inst.backend.logs(node, follow=True):
                buf += chunk
                if READY_MARK in buf:
                    ok = True
                    break
        except BackendUnreachable as exc:
            lost.append(exc)
        except RuntimeProblem as exc:  # the container went away ...
            why = exc.message
        if not ok and not lost:
            try:
                inst.backend.nodes(inst.name)  # did the node stop, or did the engine go away?
            except BackendUnreachable as exc:
                lost.append(exc)
            except RuntimeProblem:
                pass
        said = buf.decode("utf-8", "replace").replace(FAILED_MARK.decode(), "").strip()
        why = said or why or "it stopped before it was ready, without a word in its log"
        with lock:
            results[node.name] = (ok, why[-700:])
            ready = {n for n, (good, _) in results.items() if good}
            progress.detail(f"{len(ready)}/{len(nodes)} ready ({node.name}"
                            f"{'' if ok else ' failed'})")
            if len(results) == len(nodes):
                done.set()
        if ok:
            release(ready)

    def release(ready: set[str]) -> None:
        with lock:
            due = sorted(n for n, deps in after.items()
                         if n not in released and deps <= ready and n in nodes)
            released.update(due)
        for name in due:
            try:
                inst.exec(name, ["touch", GO_FILE])
            except RuntimeProblem:
                pass  # the node is gone: its own log (or its absence) says so

    release(set())
    for node in nodes.values():
        threading.Thread(target=follow, args=(node,), daemon=True).start()
    if not done.wait(timeout):
        missing = sorted(set(nodes) - set(results))
        raise RuntimeProblem(f"nodes not ready after {timeout:.0f}s: {', '.join(missing)}",
                             hint="`docker logs` of those containers says why")
    if lost:
        raise lost[0].during("waiting until every node is ready")
    failed = {n: why for n, (ok, why) in results.items() if not ok}
    if failed:
        lines = "\n".join(f"    {n}: {why}" for n, why in sorted(failed.items()))
        raise RuntimeProblem(f"some nodes failed to start:\n{lines}")

