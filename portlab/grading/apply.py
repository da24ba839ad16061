"""A submission's files on its nodes: each copied, run under its time limit, and what it
stopped (a node, a grader) said in words."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from portlab.backend.base import FileCopy
from portlab.errors import PortlabError
from portlab.grading import submission as sub
from portlab.grading.result import FileRun
from portlab.grading.watch import Settings, Stopped, Watch
from portlab.model.types import Lab
from portlab.runtime import Instance

WORK = "/run/portlab/submission"  # where a submitted script is put on its node
OUTPUT_KEPT = 2000  # characters of each file's output kept for feedback


def is_empty(content: bytes) -> bool:
    """A file that holds nothing but blank lines and comments (a starter file, untouched)."""
    return all(not line.strip() or line.lstrip().startswith(("#", ";"))
               for line in content.decode("utf-8", "replace").splitlines())


def apply(inst: Instance, lab: Lab, item: sub.Submitted, settings: Settings,
           watch: Watch) -> FileRun:
    entry = item.entry
    # The largest file any process may write is the node's own limit (Limits.file_mib, set
    # by the engine on every process of the node, RLIMIT_FSIZE): nothing to raise here.
    if entry.path is None:
        target = f"{WORK}/{entry.file.replace('/', '_')}"
        command = f"sh {target}"
        argv = ["sh", "-c", f'cd {WORK} && exec sh "$0"', target]
        mode = entry.mode
    else:
        target = entry.path
        command = inst.binding(lab).render(("submission", lab.submission.index(entry), "run"),
                                           entry.run)
        argv = ["sh", "-c", command] if command else []
        mode = entry.mode
    inst.copy(entry.node, {target: FileCopy(item.content, mode)})
    if not argv:
        return FileRun(entry.file, entry.node, "", 0, "", 0.0)
    limit = entry.timeout
    start = time.monotonic()
    # `timeout` stops the command and everything in its process group on the node; the
    # wait here is the backstop (a submission that broke `timeout` itself).
    run = ["timeout", "-k", "2", f"{limit:g}", *argv]
    watch.running(True)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(inst.exec, entry.node, run)
        try:
            got = future.result(timeout=limit + 10)
        except FutureTimeout:
            watch.stop_grade(f"{entry.file} did not finish within {limit:g} s on {entry.node}")
            raise Stopped(watch.reason) from None
        finally:
            watch.running(False)
    seconds = time.monotonic() - start
    output = (got.stdout + got.stderr)[-OUTPUT_KEPT:]
    if got.exit_code in (124, 137) and seconds >= limit:
        raise Stopped(f"{entry.file} did not finish within {limit:g} s on {entry.node} (it was "
                      "stopped)")
    return FileRun(entry.file, entry.node, command, got.exit_code, output, seconds)


def broken(inst: Instance, touched: set[str]) -> str:
    """What the submission stopped, in words, or "" when its nodes and graders still run."""
    try:
        info = inst.backend.instances().get(inst.name)
    except PortlabError:
        return ""
    if info is None:
        return ""
    for node in sorted(touched):
        now = info.nodes.get(node)
        if now is None or not now.running:
            why = now.why_not_running() if now is not None else "it is gone"
            return f"the submission stopped node {node} ({why})"
        grader = info.graders.get(node)
        if grader is not None and not grader.running:
            return f"the submission stopped the grader's probes beside {node}"
    return ""


def healthy(inst: Instance, touched: set[str]) -> None:
    broke = broken(inst, touched)
    if broke:
        raise Stopped(broke)
    inst.info = inst.backend.instances().get(inst.name) or inst.info  # graders' state now
