"""Small helpers for integration tests: run the real CLI, and look at Docker by labels."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from portlab import runtime
from portlab.backend.docker import client as docker_api
from tests.unit.labfiles import text_of


def portlab(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `portlab ARGS` as a user would (a new process), capture its output."""
    proc = subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def labelled(instance: str) -> dict[str, list[Any]]:
    """Containers and networks of this test scope that carry the instance's label."""
    c = docker_api.client()
    filters = docker_api.scope_filter(**{docker_api.LABEL_INSTANCE: instance})
    return {
        "containers": c.containers.list(all=True, sparse=True, filters=filters),
        "networks": c.networks.list(filters=filters),
    }


PATIENCE = 120.0  # seconds before a wait counts as a hang (a guard, not a timing check)
POLL = 0.05  # seconds between looks while waiting for something to happen


class Running:
    """`portlab ARGS` in a process of its own; its output is collected line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 stdin: int | None = subprocess.DEVNULL) -> None:
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "portlab", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, stdin=stdin)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.proc.stdout, self.out),
                                              (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.err))

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        """Poll until `condition()`; fail if portlab ends first or nothing happens for long."""
        deadline = time.monotonic() + PATIENCE
        while not condition():
            if self.proc.poll() is not None:
                self.finish()
                pytest.fail(f"`portlab {' '.join(self.args)}` ended (exit {self.proc.returncode}) "
                            f"before {what}:\n{self.stdout}\n{self.stderr}")
            if time.monotonic() > deadline:
                self.proc.kill()
                self.finish()
                pytest.fail(f"waited in vain for {what}:\n{self.stderr}")
            time.sleep(POLL)

    def stop(self, sig: signal.Signals) -> int:
        """Send `sig` and wait until portlab has ended; its exit code (-9 for SIGKILL)."""
        self.proc.send_signal(sig)
        return self.result(f"after {sig.name}")

    def result(self, when: str = "") -> int:
        """Wait until portlab has ended (a hang fails the test); its exit code."""
        try:
            self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.finish()
            pytest.fail(f"`portlab {' '.join(self.args)}` did not end {when}: it hangs\n"
                        f"{self.stderr}")
        self.finish()
        return self.proc.returncode

    def finish(self) -> None:
        self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=10)


@contextmanager
def lab_running(lab: str, instance: str) -> Iterator[runtime.Instance]:
    """`portlab up LAB --instance NAME` for a block of tests, `portlab down` after them."""
    portlab("up", lab, "--instance", instance, check_rc=0)
    try:
        yield runtime.instances()[instance]
    finally:
        portlab("down", "--instance", instance)


def labs_path(root: Path, *labs: dict[str, Any]) -> dict[str, str]:
    """Write each lab (as data) to ROOT/<name>/lab.yaml; the environment that makes portlab
    find them (PORTLAB_LABS_PATH)."""
    for data in labs:
        folder = root / str(data["name"])
        folder.mkdir()
        (folder / "lab.yaml").write_text(text_of(data))
    return {"PORTLAB_LABS_PATH": str(root)}


def concurrently(work: Callable[[str], None], names: list[str],
                 jobs: int | None = None) -> dict[str, BaseException | None]:
    """Run `work(name)` for every name, `jobs` at a time (default two per core: each mostly
    waits for containers and timeouts), and say what each raised (None: it passed). The
    parametrized tests then report each name on its own, as if it had run alone."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> BaseException | None:
        try:
            work(name)
        except BaseException as exc:  # a failed assertion included: the test re-raises it
            return exc
        return None

    with ThreadPoolExecutor(jobs or 2 * (os.cpu_count() or 1)) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))
