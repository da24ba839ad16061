"""The learner's path without Docker: the solved-labs file, `portlab list` and `portlab next`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portlab import core, learner


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "portlab" / "progress.json"


def run(*args: str, state_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state_home), "DOCKER_HOST": "unix:///nonexistent"}
    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_the_file_lives_in_the_xdg_state_directory(state: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert learner.state_file() == state
    monkeypatch.delenv("XDG_STATE_HOME")
    assert learner.state_file() == Path.home() / ".local/state/portlab/progress.json"


def test_a_missing_file_is_an_empty_path_and_recording_creates_it(state: Path) -> None:
    assert learner.solved() == {}
    assert learner.record_solved("nat", "nat") == state
    data = json.loads(state.read_text())
    assert data["version"] == 1 and data["solved"]["nat"]["instance"] == "nat"
    first = data["solved"]["nat"]["first"]
    learner.record_solved("nat", "again")
    again = learner.solved()["nat"]
    assert again["first"] == first and again["instance"] == "again"
    assert not [p for p in state.parent.iterdir() if p.name.startswith(".progress.")]


@pytest.mark.parametrize("broken", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"solved": 3}', b""])
def test_a_broken_file_is_recreated_never_an_error(state: Path, broken: bytes) -> None:
    state.parent.mkdir(parents=True)
    state.write_bytes(broken)
    assert learner.solved() == {}
    learner.record_solved("ports", "ports")
    assert list(learner.solved()) == ["ports"]


def test_an_unwritable_state_directory_does_not_fail_the_check(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # a file where a folder should be
    assert learner.record_solved("nat", "nat") is None


def test_next_is_the_first_unsolved_lab_of_the_path(state: Path) -> None:
    labs = core.labs()
    assert learner.next_lab(labs, {}) is labs[0]
    assert learner.next_lab(labs, {labs[0].name: {}}) is labs[1]
    assert learner.next_lab(labs, {lab.name: {} for lab in labs}) is None


def test_list_groups_by_difficulty_and_marks_the_solved_labs(tmp_path: Path) -> None:
    home = tmp_path / "state"
    (home / "portlab").mkdir(parents=True)
    (home / "portlab" / "progress.json").write_text(json.dumps(
        {"version": 1, "solved": {"ports": {"first": "x", "last": "x", "instance": "ports"}}}))
    out = run("list", state_home=home)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "beginner:" and "intermediate:" in lines and "advanced:" in lines
    [ports] = [ln for ln in lines if ln.split()[:1] == ["ports"]]
    assert ports.split()[1] == "solved"
    [nat] = [ln for ln in lines if ln.split()[:1] == ["nat"]]
    assert "solved" not in nat
    n = len(core.labs())
    assert lines[-1] == f"1 of {n} solved. Next on the path: nat (`portlab next` says more)."


def test_next_suggests_a_lab_and_how_to_start_it_without_docker(tmp_path: Path) -> None:
    home = tmp_path / "state"
    out = run("next", state_home=home)
    assert out.returncode == 0, out.stderr
    first = core.labs()[0]
    assert out.stdout.startswith(f"Next: {first.name} ({first.difficulty}, lab 1 of ")
    assert f"portlab up {first.name}" in out.stdout
    (home / "portlab").mkdir(parents=True)
    (home / "portlab" / "progress.json").write_text("garbage")
    assert run("next", state_home=home).stdout.startswith(f"Next: {first.name} ")
    everything = {lab.name: {} for lab in core.labs()}
    (home / "portlab" / "progress.json").write_text(json.dumps({"solved": everything}))
    done = run("next", state_home=home)
    assert done.returncode == 0 and done.stdout.startswith("You have solved all ")
