"""`portlab classroom serve`: the seats of a Classroom over HTTP and websockets (aiohttp).

aiohttp serves the pages, the JSON the pages poll, and the terminals'
websockets from one event loop, with no framing written here. Why aiohttp:
one maintained library does HTTP/1.1, websockets, TLS and graceful shutdown,
with no separate ASGI server to run; a terminal's output is waited for on
its file descriptor by the same loop, so open terminals cost no threads.

    GET  /s/TOKEN                 the student's page
    GET  /s/TOKEN/state           its seat, as JSON (the page polls it)
    GET  /s/TOKEN/brief           its lab's brief and diagram, once the lab is up
    POST /s/TOKEN/check|reset     the page's buttons (CSRF header)
    WS   /s/TOKEN/term/NODE       a terminal on NODE, one of the lab's workplaces
    GET  /s/TOKEN/events          the lab's packets live (server-sent events, as the live
                                  page's): the diagram lights up while the page is open
    GET  /t/TOKEN                 the trainer's dashboard
    GET  /t/TOKEN/seats           every seat, as JSON
    POST /t/TOKEN/seats/N/reset|stop
    GET  /t/TOKEN/results.csv
    WS   /t/TOKEN/watch/N/NODE    a seat's terminal, read-only
    GET  /assets/NAME             xterm.js and the pages' own script and style

Security: a token is the only key (192 bits, compared in constant time over
every seat); a seat's requests name no seat and no instance, only nodes of
its lab's workplaces. Websockets must come from the page's own origin;
POSTs carry the page's CSRF token in a header. Requests are rate-limited per
client, terminals capped per seat. Answers carry a strict Content Security
Policy and no referrer (tokens are in the path).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from portlab.errors import PortlabError, printable, untrusted
from portlab.views import html
from portlab.web import xterm
from portlab.web.classroom import MAX_TERMINALS, Classroom, Seat, TerminalSession

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RATE_WINDOW = 10.0  # seconds
RATE_REQUESTS = 120  # requests per client in a window
CHECK_GAP = 3.0  # seconds between two Checks of one seat
MAX_MESSAGE = 64 * 1024  # bytes of one websocket message from a page
MAX_BEHIND = 500  # trace events waiting for a slow page before some are dropped
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                               "font-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
OWN_ASSETS = {"classroom.js": "application/javascript", "dashboard.js": "application/javascript",
              "live.js": "application/javascript",
              "classroom.css": "text/css", "diagram.css": "text/css"}


class Server:
    """The web side of one Classroom. `pages` renders the HTML (portlab.views.html)."""

    def __init__(self, room: Classroom, *, pages: Any, terminal: Callable[..., Any],
                 trace: Callable[..., Any] | None = None, origins: tuple[str, ...] = (),
                 tls: bool = False) -> None:
        self.room = room
        self.open_trace = trace  # (instance=) -> a started trace: events(), stop()
        self._tracing: dict[int, asyncio.Queue[Any]] = {}  # seat -> its page's trace events
        self.pages = pages
        self.open_terminal = terminal  # (node, instance=, rows=, cols=) -> backend Terminal
        self.origins = origins  # origins a page may come from besides the server's own
        self.tls = tls
        self.nodes: list[str] = pages.nodes
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._assets: dict[str, tuple[bytes, str]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/", self.home)
        r.add_get("/assets/{name}", self.asset)
        r.add_get("/s/{token}", self.student_page)
        r.add_get("/s/{token}/state", self.student_state)
        r.add_get("/s/{token}/brief", self.student_brief)
        r.add_post("/s/{token}/check", self.student_check)
        r.add_post("/s/{token}/reset", self.student_reset)
        r.add_get("/s/{token}/term/{node}", self.student_terminal)
        r.add_get("/s/{token}/events", self.student_events)
        r.add_get("/t/{token}", self.dashboard)
        r.add_get("/t/{token}/seats", self.seats)
        r.add_post("/t/{token}/seats/{seat}/{action}", self.seat_action)
        r.add_get("/t/{token}/results.csv", self.results)
        r.add_get("/t/{token}/watch/{seat}/{node}", self.watch)
        return app

    # --- every request ---
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        client = request.match_info.get("token") or (request.remote or "?")
        now = time.monotonic()
        hits = self._hits[client[:64]]
        while hits and now - hits[0] > RATE_WINDOW:
            hits.popleft()
        if len(hits) >= RATE_REQUESTS:
            return _plain(429, "too many requests: wait a few seconds")
        hits.append(now)
        if len(self._hits) > 10_000:  # forget clients that went quiet
            for key in [k for k, v in self._hits.items() if not v]:
                del self._hits[key]
        if request.method != "GET" or request.headers.get("Upgrade", "").lower() == "websocket":
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self._own_origins(request):
                return _plain(403, "this request comes from another site's page")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _plain(exc.status, exc.text or exc.reason)
        if not response.prepared:
            response.headers.update(HEADERS)
        return response

    def _own_origins(self, request: web.Request) -> set[str]:
        scheme = "https" if self.tls else request.scheme
        return {f"{scheme}://{request.host}", *self.origins}

    def _seat(self, request: web.Request) -> Seat:
        seat = self.room.seat_for(request.match_info["token"])
        if seat is None:
            raise web.HTTPNotFound(text="no such page: ask your trainer for your link")
        seat.last_seen = time.time()
        return seat

    def _trainer(self, request: web.Request) -> None:
        if not self.room.is_instructor(request.match_info["token"]):
            raise web.HTTPNotFound(text="no such page: ask your trainer for your link")

    @staticmethod
    def _csrf(request: web.Request, expected: str) -> None:
        given = request.headers.get("X-Portlab-CSRF", "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            raise web.HTTPForbidden(text="this request has no valid CSRF token: reload the page")

    # --- pages ---
    async def home(self, request: web.Request) -> web.StreamResponse:
        return _plain(200, "portlab classroom: open the link your trainer gave you")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self._assets:
            if name in xterm.FILES:
                data = (xterm.folder() / name).read_bytes() if xterm.present() else b""
                kind = "text/css" if name.endswith(".css") else "application/javascript"
            elif name in OWN_ASSETS:
                data = html.asset(name).encode()
                kind = OWN_ASSETS[name]
            else:
                raise web.HTTPNotFound(text="no such file")
            self._assets[name] = (data, kind)
        data, kind = self._assets[name]
        return web.Response(body=data, content_type=kind)

    async def student_page(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        self.room.visit(seat)
        html = self.pages.student(seat, tls=self.tls or request.secure)
        return web.Response(text=html, content_type="text/html")

    async def student_state(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        if seat.state in ("waiting", "stopped", "queued", "failed"):
            self.room.visit(seat)  # an idle seat comes back on the next visit
        return web.json_response({**seat.summary(len(self.room.check_ids), time.time()),
                                  "nodes": self.nodes, "report": seat.report},
                                 dumps=_dumps)

    async def student_brief(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        if seat.state not in ("ready", "checking"):
            raise web.HTTPConflict(text=f"the lab is {seat.state}")
        try:
            brief, picture = await asyncio.to_thread(self.pages.brief, seat)
        except PortlabError as exc:
            raise web.HTTPConflict(text=printable(exc.message)) from None
        return web.json_response({"brief": untrusted(brief), "diagram": picture}, dumps=_dumps)

    async def student_check(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        self._csrf(request, seat.csrf)
        if seat.state != "ready":
            raise web.HTTPConflict(text=f"the lab is {seat.state}: Check when it is ready")
        if time.time() - seat.last_check < CHECK_GAP:
            raise web.HTTPTooManyRequests(text="a Check just ran: wait a moment")
        seat.last_check = time.time()
        await asyncio.wrap_future(self.room.check(seat))
        return await self.student_state(request)

    async def student_reset(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        self._csrf(request, seat.csrf)
        self.room.reset(seat)
        return await self.student_state(request)

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        self._trainer(request)
        return web.Response(text=self.pages.dashboard(self.room, tls=self.tls or request.secure),
                            content_type="text/html")

    async def seats(self, request: web.Request) -> web.StreamResponse:
        self._trainer(request)
        return web.json_response({"lab": self.room.lab, "checks": self.room.check_ids,
                                  "seats": self.room.table()}, dumps=_dumps)

    async def seat_action(self, request: web.Request) -> web.StreamResponse:
        self._trainer(request)
        self._csrf(request, self.room.instructor_csrf)
        seat = self._numbered(request)
        action = request.match_info["action"]
        if action == "reset":
            self.room.reset(seat)
        elif action == "stop":
            self.room.stop(seat)
        else:
            raise web.HTTPNotFound(text="no such action: reset or stop")
        return await self.seats(request)

    def _numbered(self, request: web.Request) -> Seat:
        number = request.match_info["seat"]
        found = [s for s in self.room.seats if str(s.number) == number]
        if not found:
            raise web.HTTPNotFound(text="no such seat")
        return found[0]

    async def results(self, request: web.Request) -> web.StreamResponse:
        self._trainer(request)
        return web.Response(text=self.room.csv(), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{self.room.lab}-results.csv"'})

    async def student_events(self, request: web.Request) -> web.StreamResponse:
        """The seat's packets, as the live page gets them: a trace of the lab's forwarding
        nodes runs while the page is open, and stops when it closes. One per seat: a page
        opened again (a reload) ends the one before."""
        seat = self._seat(request)
        if self.open_trace is None:
            raise web.HTTPNotFound(text="no live trace here")
        if seat.state not in ("ready", "checking"):
            raise web.HTTPConflict(text=f"the lab is {seat.state}")
        events: asyncio.Queue[Any] = asyncio.Queue()
        before = self._tracing.get(seat.number)
        if before is not None:
            before.put_nowait(None)  # the older page's stream ends, and its trace with it
        self._tracing[seat.number] = events
        try:
            try:
                trace = await asyncio.to_thread(self.open_trace, instance=seat.instance)
            except PortlabError as exc:
                raise web.HTTPConflict(text=printable(exc.message)) from None
            loop = asyncio.get_running_loop()

            def pump() -> None:  # the trace's thread: its events onto the loop's queue
                try:
                    for event in trace.events():
                        loop.call_soon_threadsafe(events.put_nowait, event)
                finally:
                    loop.call_soon_threadsafe(events.put_nowait, None)

            reader = loop.run_in_executor(None, pump)
            answer = web.StreamResponse(headers={**HEADERS,
                                                 "Content-Type": "text/event-stream"})
            try:
                await answer.prepare(request)
                await answer.write(b": the lab's packets follow\n\n")
                while (event := await events.get()) is not None:
                    if events.qsize() > MAX_BEHIND:
                        continue  # the page reads slowly: drop, never pile up
                    data = _dumps(_clean(event.to_json()))
                    await answer.write(f"event: {event.type}\ndata: {data}\n\n".encode())
            finally:
                loop.run_in_executor(None, trace.stop)  # runs even if this was cancelled
                reader.cancel()
            return answer
        finally:
            if self._tracing.get(seat.number) is events:
                del self._tracing[seat.number]

    # --- terminals ---
    async def student_terminal(self, request: web.Request) -> web.StreamResponse:
        seat = self._seat(request)
        node = request.match_info["node"]
        if node not in self.nodes:
            raise web.HTTPNotFound(text="no terminal on that node in this lab")
        if seat.state not in ("ready", "checking"):
            raise web.HTTPConflict(text=f"the lab is {seat.state}")
        if node not in seat.terminals and len(seat.terminals) >= MAX_TERMINALS:
            raise web.HTTPTooManyRequests(text="too many terminals open")
        rows, cols = _size(request.query.get("rows"), 24), _size(request.query.get("cols"), 80)
        old = seat.terminals.pop(node, None)
        if old is not None:  # the same node opened again (a reload): the old one goes
            old.close()
        try:
            term = await asyncio.to_thread(self.open_terminal, node, instance=seat.instance,
                                           rows=rows, cols=cols)
        except PortlabError as exc:
            raise web.HTTPConflict(text=printable(exc.message)) from None
        session = TerminalSession(term)
        seat.terminals[node] = session
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=30)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        ended = asyncio.Event()

        def readable() -> None:
            data = term.read()
            if data is None:
                return
            if not data:
                loop.remove_reader(term.fileno())
                ended.set()
                return
            session.output(data)

        sender = Sender(ws)
        session.readers.append(sender.put)
        loop.add_reader(term.fileno(), readable)
        reading = asyncio.ensure_future(self._input(ws, seat, term))
        finished = asyncio.ensure_future(ended.wait())
        try:
            await asyncio.wait([reading, finished], return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when aiohttp cancels the handler as the page's connection drops
            for task in (finished, reading):
                task.cancel()
            try:
                loop.remove_reader(term.fileno())
            except (ValueError, OSError):
                pass
            sender.stop()
            if seat.terminals.get(node) is session:
                del seat.terminals[node]
            loop.run_in_executor(None, session.close)  # not awaited: runs even if cancelled
        await ws.close()
        return ws

    async def _input(self, ws: web.WebSocketResponse, seat: Seat, term: Any) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                said = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(said, dict):
                continue
            seat.last_seen = time.time()
            if said.get("type") == "input" and isinstance(said.get("data"), str):
                await asyncio.to_thread(term.write, said["data"].encode("utf-8", "replace"))
            elif said.get("type") == "resize":
                await asyncio.to_thread(term.resize, _size(said.get("rows"), 24),
                                        _size(said.get("cols"), 80))

    async def watch(self, request: web.Request) -> web.StreamResponse:
        self._trainer(request)
        seat = self._numbered(request)
        node = request.match_info["node"]
        if node not in self.nodes:
            raise web.HTTPNotFound(text="no terminal on that node in this lab")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=30)
        await ws.prepare(request)
        session = seat.terminals.get(node)
        if session is None:
            await ws.send_bytes(f"\r\n[{seat.label} has no terminal open on {node}]\r\n"
                                .encode())
            await ws.close()
            return ws
        sender = Sender(ws)
        sender.put(session.history())
        session.readers.append(sender.put)
        try:
            async for _ in ws:  # read-only: whatever the trainer's page sends is ignored
                pass
        finally:
            if sender.put in session.readers:
                session.readers.remove(sender.put)
            sender.stop()
        return ws


class Sender:
    """A terminal's output to one page, in order, by one task: a page that reads slowly
    loses the oldest output beyond MAX_QUEUED chunks, never the server's memory."""

    MAX_QUEUED = 256

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._run())

    def put(self, data: bytes) -> None:
        if self.queue.qsize() >= self.MAX_QUEUED:
            self.queue.get_nowait()
        self.queue.put_nowait(data)

    def stop(self) -> None:
        self.queue.put_nowait(None)

    async def _run(self) -> None:
        while (data := await self.queue.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return  # the page went away


def _clean(value: Any) -> Any:
    """Every string in a trace event made safe to show (it came from a node's tools)."""
    if isinstance(value, str):
        return untrusted(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _size(value: object, default: int) -> int:
    try:
        return max(2, min(500, int(str(value))))
    except ValueError:
        return default


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=HEADERS)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=True)
