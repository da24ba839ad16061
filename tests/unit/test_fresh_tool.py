"""portlab-fresh (portlab/node/fresh.sh), run here with a stand-in `ip` that logs what it is
asked: the address is added for the one command, removed after it whatever it did, and a
taken or refused address is said apart from the command's own exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from portlab.backend.docker import image

TOOL = image.NODE_DIR / "fresh.sh"


def fresh(tmp_path: Path, *command: str, add_says: str = "",
          add_code: int = 0) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "ip.log"
    ip = tmp_path / "bin" / "ip"
    ip.parent.mkdir(exist_ok=True)
    ip.write_text(f'#!/bin/sh\necho "$*" >> {log}\n'
                  f'if [ "$2" = add ]; then printf "%s" "{add_says}" >&2; exit {add_code}; fi\n')
    ip.chmod(0o755)
    env = {**os.environ, "PATH": f"{ip.parent}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(TOOL), "wan", "198.18.35.77", *command], env=env,
                          capture_output=True, text=True, timeout=30)
    return done, log.read_text().splitlines() if log.exists() else []


def test_the_address_is_there_for_the_command_alone(tmp_path: Path) -> None:
    done, ip = fresh(tmp_path, "sh", "-c", "echo answer; exit 3")
    assert (done.returncode, done.stdout) == (3, "answer\n")  # the command's own code
    assert ip == ["addr add 198.18.35.77/32 dev wan", "addr del 198.18.35.77/32 dev wan"]


@pytest.mark.parametrize(("says", "code", "want"), [
    ("RTNETLINK answers: File exists", 2, 75),
    ("RTNETLINK answers: Operation not permitted", 2, 76)])
def test_an_address_not_added_runs_nothing(tmp_path: Path, says: str, code: int,
                                           want: int) -> None:
    done, ip = fresh(tmp_path, "touch", str(tmp_path / "ran"), add_says=says, add_code=code)
    assert done.returncode == want and "portlab-fresh:" in done.stderr
    assert not (tmp_path / "ran").exists() and ip == ["addr add 198.18.35.77/32 dev wan"]


def test_a_missing_command_is_the_shells_not_found(tmp_path: Path) -> None:
    done, ip = fresh(tmp_path, "no-such-tool-here")
    assert done.returncode == 127 and ip[-1].startswith("addr del")
