"""A classroom removes what a classroom killed outright left, and nothing else: each seat's
instance is written down before its lab starts, and an instance named like a seat that no
classroom started (someone's own `portlab up -i class-01`) stops the classroom instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portlab.errors import UsageError
from portlab.progress import Quiet
from portlab.web import hosting


class Api:
    def __init__(self, up: list[str]) -> None:
        self.running = list(up)
        self.calls: list[tuple[str, str | None]] = []

    def up(self, name: str, *, instance: str | None = None, student: str | None = None,
           salt: str | None = None) -> Any:
        self.calls.append(("up", instance))
        self.running.append(str(instance))

    def down(self, name: str | None = None, *, instance: str | None = None) -> Any:
        self.calls.append(("down", instance))
        self.running.remove(str(instance))

    def check(self, name: str | None = None, *, instance: str | None = None) -> Any:
        return None


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Api:
    fake = Api([])
    monkeypatch.setattr(hosting.locks, "lock_dir", lambda: tmp_path)
    monkeypatch.setattr(hosting, "scope", lambda: "t1")
    monkeypatch.setattr(hosting.runtime, "instances", lambda: list(fake.running))
    return fake


def test_seats_a_killed_classroom_started_are_removed(api: Api) -> None:
    room_api = hosting.Recording(api)
    room_api.up("forwarding", instance="class-01")
    room_api.up("forwarding", instance="class-02")
    room_api.up("forwarding", instance="class-01")  # a reset: on record once
    assert hosting.record_path().read_text().split() == ["class-01", "class-02"]
    # ... SIGKILL: the labs and the record stay; the next classroom takes over
    hosting.take_over(api, Quiet())
    assert api.running == [] and ("down", "class-02") in api.calls
    assert not hosting.record_path().exists()


def test_an_instance_nobody_recorded_is_left_alone_and_named(api: Api) -> None:
    api.running = ["class-01", "forwarding"]  # someone's own, and a lab of theirs
    with pytest.raises(UsageError, match="class-01: named like a classroom's seats") as info:
        hosting.take_over(api, Quiet())
    assert "portlab down -i class-01" in str(info.value.hint)
    assert api.running == ["class-01", "forwarding"] and not api.calls


def test_a_hostile_record_is_bounded_and_names_only_seats(api: Api) -> None:
    hosting.record_path().write_text("forwarding\n" + "class-07\n" + "x" * 200000)
    assert hosting.recorded() == {"class-07"}
