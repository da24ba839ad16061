"""`portlab classroom serve`'s web side with labs faked: tokens, origins, CSRF, rate limits,
caps, and what a seat can reach. A real server (aiohttp's test server on loopback) and real
websockets; the labs are a fake of portlab's core, the terminals socket pairs."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from portlab.errors import UsageError
from portlab.web import app as web_app
from portlab.web.classroom import MAX_TERMINALS, Classroom, Seat


class EchoTerminal:
    """A terminal whose program echoes what it is sent, through a real socket pair."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.closed = False
        self.size = (0, 0)

    def fileno(self) -> int:
        return self.ours.fileno()

    def read(self) -> bytes | None:
        try:
            return self.ours.recv(65536)
        except BlockingIOError:
            return None

    def write(self, data: bytes) -> None:
        self.theirs.sendall(b"echo:" + data)

    def resize(self, rows: int, cols: int) -> None:
        self.size = (rows, cols)

    def close(self) -> None:
        self.closed = True
        self.theirs.close()


@dataclass
class Result:
    id: str
    passed: bool


@dataclass
class Report:
    results: list[Result]


class FakeOps:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.up_now: set[str] = set()
        self.terminals: list[tuple[str, str, EchoTerminal]] = []

    def up(self, name: str, *, instance: str | None = None, student: str | None = None,
           salt: str | None = None) -> None:
        self.calls.append(("up", str(instance)))
        self.up_now.add(str(instance))

    def down(self, name: str | None = None, *, instance: str | None = None) -> object:
        self.calls.append(("down", str(instance)))
        if instance not in self.up_now:
            raise UsageError(f"no instance '{instance}' is up")
        self.up_now.discard(str(instance))
        return object()

    def check(self, name: str | None = None, *, instance: str | None = None) -> Report:
        self.calls.append(("check", str(instance)))
        return Report([Result("reach", instance == "class-01"), Result("private", True)])

    def terminal(self, node: str, *, instance: str, rows: int, cols: int) -> EchoTerminal:
        term = EchoTerminal()
        self.terminals.append((node, instance, term))
        return term


class Pages:
    nodes = ["router", "laptop"]

    def student(self, seat: Seat, *, tls: bool) -> str:
        return f'<body data-csrf="{seat.csrf}">{seat.label}</body>'

    def dashboard(self, room: Classroom, *, tls: bool) -> str:
        return f'<body data-csrf="{room.instructor_csrf}"></body>'

    def brief(self, seat: Seat) -> tuple[str, str]:
        return f"the brief of {seat.instance}\n\x1b[31mred\x1b[0m", "<svg></svg>"


Scenario = Callable[[TestClient, Classroom, FakeOps], Awaitable[None]]


def serve(scenario: Scenario, *, roster: list[str] | None = None, seats: int = 2) -> FakeOps:
    ops = FakeOps()
    room = Classroom("forwarding", ops, seats=0 if roster else seats, roster=roster,
                     checks=["reach", "private"], workers=2,
                     describe=lambda report: "\n".join(
                         f"{'PASS' if r.passed else 'FAIL'} {r.id}" for r in report.results))
    server = web_app.Server(room, pages=Pages(), terminal=ops.terminal)

    async def main() -> None:
        async with TestClient(TestServer(server.app())) as client:
            await scenario(client, room, ops)
        room.close()

    asyncio.run(main())
    return ops


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def opened(client: TestClient, seat: Seat) -> dict[str, Any]:
    """The seat's link opened, as a student does, and its lab ready."""
    await client.get(f"/s/{seat.token}")
    return await ready(client, seat)


async def soon(condition: Callable[[], object], seconds: float = 2.0) -> None:
    """Wait a moment for `condition` (what a handler does as a connection closes)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def ready(client: TestClient, seat: Seat) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        got = await (await client.get(f"/s/{seat.token}/state")).json()
        if got["state"] == "ready" or time.monotonic() > deadline:
            return dict(got)
        await asyncio.sleep(0.02)


def test_unknown_and_forged_tokens_get_the_same_not_found_everywhere() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, two = room.seats
        forged = one.token[:-1] + ("A" if one.token[-1] != "A" else "B")
        bodies = set()
        for path in (f"/s/{forged}", f"/s/{forged}/state", f"/s/{forged}/brief",
                     f"/t/{forged}", f"/t/{one.token}", f"/t/{one.token}/seats",
                     f"/t/{two.token}/results.csv", f"/s/{room.instructor}/state",
                     f"/t/{one.token}/watch/2/router"):
            answer = await client.get(path)
            assert answer.status == 404, path
            bodies.add(await answer.text())
        assert len(bodies) == 1  # nothing says which part of a token was right
        assert ops.calls == []  # and nothing started

    serve(scenario)


def test_a_seat_reaches_only_its_own_lab_and_its_workplaces() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, two = room.seats
        await opened(client, two)
        assert ops.calls == [("down", "class-02"), ("up", "class-02")]
        for node in ("friend", "..%2f..%2fclass-01", "router/../../s", "class-01"):
            answer = await client.get(f"/s/{two.token}/term/{node}", headers=origin(client))
            assert answer.status == 404, node
        async with client.ws_connect(f"/s/{two.token}/term/router",
                                     headers=origin(client)) as ws:
            await ws.send_str(json.dumps({"type": "input", "data": "id\r"}))
            assert (await ws.receive_bytes(timeout=5)).startswith(b"echo:id")
        assert [(n, i) for n, i, _ in ops.terminals] == [("router", "class-02")]
        # seat 2's token on seat 1's paths: there are none; the seat is the token's alone
        assert (await client.get(f"/s/{two.token}/state?seat=1&instance=class-01")).status \
            == 200
        assert all(i == "class-02" for _, i in ops.calls)
        assert one.state == "waiting"

    serve(scenario)


def test_websockets_and_posts_from_another_origin_or_without_csrf_are_refused() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, two = room.seats
        await opened(client, one)
        evil = {"Origin": "http://evil.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect(f"/s/{one.token}/term/router", headers=evil)
        assert refused.value.status == 403
        for headers, status in (({}, 403), ({"X-Portlab-CSRF": two.csrf}, 403),
                                ({**evil, "X-Portlab-CSRF": one.csrf}, 403),
                                ({**origin(client), "X-Portlab-CSRF": room.instructor_csrf},
                                 403)):
            answer = await client.post(f"/s/{one.token}/check", headers=headers)
            assert answer.status == status, headers
        answer = await client.post(f"/t/{room.instructor}/seats/1/stop",
                                   headers={"X-Portlab-CSRF": one.csrf})
        assert answer.status == 403
        assert ("check", "class-01") not in ops.calls and one.state == "ready"
        answer = await client.post(f"/s/{one.token}/check",
                                   headers={**origin(client), "X-Portlab-CSRF": one.csrf})
        assert answer.status == 200
        got = await answer.json()
        assert got["passed"] == 2 and "PASS reach" in got["report"]

    serve(scenario)


def test_check_results_reach_the_dashboard_and_its_csv() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, two = room.seats
        for seat in (one, two):
            await opened(client, seat)
            await client.post(f"/s/{seat.token}/check", headers={"X-Portlab-CSRF": seat.csrf})
        table = await (await client.get(f"/t/{room.instructor}/seats")).json()
        assert [s["passed"] for s in table["seats"]] == [2, 1]
        assert table["seats"][0]["label"] == "=HYPERLINK(\"http://x\")"
        csv = await (await client.get(f"/t/{room.instructor}/results.csv")).text()
        assert "'=HYPERLINK" in csv  # a spreadsheet shows it, never runs it
        assert csv.splitlines()[1].split(",")[-3:-1] == ["pass", "pass"]
        brief = await (await client.get(f"/s/{one.token}/brief")).json()
        assert "\x1b" not in brief["brief"] and "\\x1b[31m" in brief["brief"]

    serve(scenario, roster=['=HYPERLINK("http://x")', "bob"])


def test_the_trainer_watches_a_terminal_read_only_and_can_reset_a_seat() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, _ = room.seats
        await opened(client, one)
        async with client.ws_connect(f"/s/{one.token}/term/router") as student:
            await student.send_str(json.dumps({"type": "input", "data": "before\r"}))
            assert b"before" in await student.receive_bytes(timeout=5)
            async with client.ws_connect(f"/t/{room.instructor}/watch/1/router") as trainer:
                assert b"echo:before" in await trainer.receive_bytes(timeout=5)  # history
                await trainer.send_str(json.dumps({"type": "input", "data": "rm -rf /\r"}))
                await student.send_str(json.dumps({"type": "input", "data": "after\r"}))
                assert b"echo:after" in await trainer.receive_bytes(timeout=5)
                assert b"echo:after" in await student.receive_bytes(timeout=5)
        terminal = ops.terminals[0][2]
        await soon(lambda: terminal.closed)
        assert terminal.closed  # the student's page went: so did the program
        answer = await client.post(f"/t/{room.instructor}/seats/1/reset",
                                   headers={"X-Portlab-CSRF": room.instructor_csrf})
        assert answer.status == 200
        await asyncio.sleep(0.1)
        await ready(client, one)
        assert ops.calls[-2:] == [("down", "class-01"), ("up", "class-01")]

    serve(scenario)


def test_requests_are_rate_limited_and_terminals_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pages, "nodes", [f"n{i}" for i in range(MAX_TERMINALS + 2)])

    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, _ = room.seats
        await opened(client, one)
        sockets = [await client.ws_connect(f"/s/{one.token}/term/n{i}")
                   for i in range(MAX_TERMINALS)]
        answer = await client.get(f"/s/{one.token}/term/n{MAX_TERMINALS}")
        assert answer.status == 429
        for ws in sockets:
            await ws.close()
        statuses = [(await client.get(f"/s/{one.token}/state")).status
                    for _ in range(web_app.RATE_REQUESTS)]
        assert statuses[-1] == 429

    serve(scenario)


def test_an_idle_seat_is_stopped_and_comes_back_on_the_next_visit() -> None:
    async def scenario(client: TestClient, room: Classroom, ops: FakeOps) -> None:
        one, _ = room.seats
        await opened(client, one)
        assert room.idle(60, now=time.time() + 30) == []
        assert room.idle(60, now=time.time() + 120) == [one]
        await soon(lambda: one.state == "stopped")
        assert one.state == "stopped"
        await ready(client, one)  # the page's poll is a visit
        assert ops.calls[-1] == ("up", "class-01")

    serve(scenario)


def test_closing_the_classroom_removes_every_lab_it_started() -> None:
    ops = serve(lambda client, room, ops: _visit_both(client, room))
    assert ops.up_now == set()


async def _visit_both(client: TestClient, room: Classroom) -> None:
    for seat in room.seats:
        await opened(client, seat)


def test_seats_are_bounded_and_rosters_checked() -> None:
    with pytest.raises(UsageError, match="at most 60"):
        Classroom("x", FakeOps(), seats=61)
    with pytest.raises(UsageError, match="twice"):
        Classroom("x", FakeOps(), roster=["ann", "ann"])
    room = Classroom("x", FakeOps(), seats=3)
    assert len({s.token for s in room.seats} | {room.instructor}) == 4
    assert room.seat_for(room.seats[2].token) is room.seats[2]
    assert room.seat_for("") is None and room.seat_for("é" * 32) is None


def test_seats_beyond_max_running_wait_for_a_free_place() -> None:
    ops = FakeOps()
    room = Classroom("x", ops, seats=3, max_running=2, workers=2)
    one, two, three = room.seats
    for seat in room.seats:
        room.visit(seat)
    assert three.state == "queued"
    for _ in range(200):
        if one.state == two.state == "ready":
            break
        time.sleep(0.01)
    room.visit(three)
    assert three.state == "queued"  # still full
    room.stop(one).result(timeout=5)
    room.visit(three)
    for _ in range(200):
        if three.state == "ready":
            break
        time.sleep(0.01)
    assert three.state == "ready" and ("up", "class-03") in ops.calls
    room.close()
    assert ops.up_now == set()


def test_a_lab_that_failed_to_start_is_not_retried_at_every_poll() -> None:
    ops = FakeOps()

    def broken(*args: Any, **kw: Any) -> None:
        ops.calls.append(("up", "broken"))
        raise UsageError("the image is gone")

    ops.up = broken  # type: ignore[method-assign]
    room = Classroom("x", ops, seats=1, workers=1)
    seat = room.seats[0]
    room.visit(seat)
    for _ in range(200):
        if seat.state == "failed":
            break
        time.sleep(0.01)
    assert seat.state == "failed" and "the image is gone" in seat.problem
    for _ in range(5):
        room.visit(seat)
    assert ops.calls.count(("up", "broken")) == 1
    room.close()


class FakeEvent:
    type = "packet"

    def __init__(self, text: str) -> None:
        self.text = text

    def to_json(self) -> dict[str, Any]:
        return {"type": "packet", "node": "router", "link": "router.wan", "text": self.text}


class FakeTrace:
    def __init__(self) -> None:
        self.stopped = False

    def events(self) -> Any:
        yield FakeEvent("wan in TCP 1.2.3.4:5 → 6.7.8.9:25565 \x1b]0;owned\x07")
        while not self.stopped:
            time.sleep(0.01)

    def stop(self) -> None:
        self.stopped = True


def test_a_seat_follows_its_own_packets_and_the_trace_stops_with_the_page() -> None:
    ops, traces = FakeOps(), []

    def trace(instance: str) -> FakeTrace:
        traces.append((instance, FakeTrace()))
        return traces[-1][1]

    room = Classroom("forwarding", ops, seats=2, workers=2)
    server = web_app.Server(room, pages=Pages(), terminal=ops.terminal, trace=trace)

    async def main() -> None:
        async with TestClient(TestServer(server.app())) as client:
            one, two = room.seats
            assert (await client.get(f"/s/{one.token}/events")).status == 409  # not up yet
            await opened(client, one)
            stream = await client.get(f"/s/{one.token}/events")
            assert stream.headers["Content-Type"] == "text/event-stream"
            seen = b""
            while b"25565" not in seen:
                seen += await asyncio.wait_for(stream.content.readany(), 5)
            assert b"event: packet" in seen and b"\x1b" not in seen and b"\\\\x1b" in seen
            again = await client.get(f"/s/{one.token}/events")  # a reload: the newest wins
            await soon(lambda: traces[0][1].stopped)
            assert traces[0][1].stopped and traces[0][0] == "class-01"
            assert len(traces) == 2 and not traces[1][1].stopped
            again.close()
            stream.close()
            await soon(lambda: traces[1][1].stopped)
            assert traces[1][1].stopped
        room.close()

    asyncio.run(main())
