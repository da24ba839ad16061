"""The machine-wide locks (portlab/locks.py): exclusive, never stale, nothing piling up."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from portlab import locks
from portlab.errors import UsageError


@pytest.fixture(autouse=True)
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_instance_lock_file_is_gone_once_released(own_tmp: Path) -> None:
    with locks.instance_lock("s", "demo"):
        assert [p.name for p in locks.lock_dir().iterdir()] == ["up-s-demo.lock"]
    assert list(locks.lock_dir().iterdir()) == []


def test_second_holder_is_refused_with_the_holders_pid(own_tmp: Path) -> None:
    # A process of its own holds the lock (flock is per open file, as for two portlab runs).
    code = ("import sys, tempfile; tempfile.tempdir = sys.argv[1]\n"
            "from portlab import locks\n"
            "with locks.instance_lock('s', 'demo'):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(own_tmp)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError) as err, locks.instance_lock("s", "demo"):
            pass
        assert f"(pid {holder.pid})" in err.value.message
        assert "nothing was changed" in err.value.message
        with locks.instance_lock("s", "other"):  # other instances are not held up
            pass
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    with locks.instance_lock("s", "demo"):  # free again
        pass
    assert list(locks.lock_dir().iterdir()) == []


def test_a_killed_holders_file_is_reused_and_removed(own_tmp: Path) -> None:
    stale = locks.lock_dir() / "up-s-demo.lock"
    stale.write_text("12345\n")  # as left by a portlab killed with SIGKILL (no flock held)
    with locks.instance_lock("s", "demo"):
        assert stale.read_text().strip() != "12345"
    assert not stale.exists()


def test_instance_lock_stays_exclusive_while_files_come_and_go(
        own_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Holders remove the file as they let go; one that opened the old file meanwhile must
    not count as holding the lock (it opens the new one instead). A pause before each flock
    widens that window, so the race happens many times here."""
    real = fcntl.flock

    def slow_flock(fd: Any, operation: int) -> None:
        time.sleep(0.0005)
        real(fd, operation)

    monkeypatch.setattr(locks.fcntl, "flock", slow_flock)
    holding = 0
    most = 0
    got = 0
    count = threading.Lock()

    def worker() -> None:
        nonlocal holding, most, got
        for _ in range(200):
            try:
                with locks.instance_lock("s", "busy"):
                    with count:
                        holding += 1
                        got += 1
                        most = max(most, holding)
                    time.sleep(0.001)
                    with count:
                        holding -= 1
            except UsageError:
                pass  # held by another thread: refused, as it should be

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    assert got > 0
    assert list(locks.lock_dir().iterdir()) == []


def test_start_slots_let_only_so_many_labs_start_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTLAB_PARALLEL_STARTS", "2")
    inside = 0
    most = 0
    waited: list[int] = []
    count = threading.Lock()
    go = threading.Event()

    def worker() -> None:
        nonlocal inside, most
        with locks.start_slot(waited.append):
            with count:
                inside += 1
                most = max(most, inside)
            go.wait(5)
            with count:
                inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    # the third one finds every slot taken and says so; the two inside have both counted
    # themselves (a slot taken a moment before counting is not yet in `most`)
    while not waited or inside < 2:
        threading.Event().wait(0.01)
    go.set()
    for t in threads:
        t.join()
    assert most == 2
    assert set(waited) == {2}


@pytest.mark.parametrize("value", ["0", "65", "two", "-1", "1.5"])
def test_bad_parallel_starts_value_is_a_usage_error(value: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTLAB_PARALLEL_STARTS", value)
    with pytest.raises(UsageError, match="PORTLAB_PARALLEL_STARTS"):
        locks.start_slots()


def test_forget_stale_removes_only_unheld_lock_files_of_its_scope(own_tmp: Path) -> None:
    folder = locks.lock_dir()
    for name in ("up-s-a.lock", "up-s-b.lock", "up-other-a.lock", "start-0.lock"):
        (folder / name).write_text("12345\n")  # left by killed runs
    with locks.instance_lock("s", "busy"):
        locks.forget_stale("s", "a")
        assert sorted(p.name for p in folder.iterdir()) == [
            "start-0.lock", "up-other-a.lock", "up-s-b.lock", "up-s-busy.lock"]
        locks.forget_stale("s")
        assert sorted(p.name for p in folder.iterdir()) == [
            "start-0.lock", "up-other-a.lock", "up-s-busy.lock"]  # the held one stays
