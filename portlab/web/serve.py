"""Serve the live page on 127.0.0.1 and stream a trace's events to it (server-sent events).

The standard library's ThreadingHTTPServer serves three things:

    GET  /        the page (portlab.views.html.live_page): diagram, slides, script inline
    GET  /events  text/event-stream: `packet`, `connection`, `step` and `end` events, each
                  with one JSON object (the same as `portlab trace --json` and
                  `portlab demo --json` print)
    POST /next    the page's "Next step" button (a demo advances)

A page that connects late first gets the current step. The server listens on
loopback unless the CLI was told otherwise explicitly (portlab.cli.common.web_bind).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from portlab.errors import UsageError

KEEPALIVE_SECONDS = 10.0


class Hub:
    """Fans events out to every connected page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[queue.Queue[tuple[str, dict[str, Any]] | None]] = []
        self.step: dict[str, Any] | None = None  # the step shown now, for late pages
        self.ended: dict[str, Any] | None = None
        self.on_next: Callable[[], None] | None = None

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "step":
            self.step = data
        if kind == "end":
            self.ended = data
        with self._lock:
            for client in self._clients:
                client.put((kind, data))

    def subscribe(self) -> queue.Queue[tuple[str, dict[str, Any]] | None]:
        q: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        if self.step is not None:
            q.put(("step", self.step))
        if self.ended is not None:
            q.put(("end", self.ended))
        with self._lock:
            self._clients.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[tuple[str, dict[str, Any]] | None]) -> None:
        with self._lock:
            if q in self._clients:
                self._clients.remove(q)

    def close(self, wait: float = 2.0) -> None:
        """Tell every page the stream ends, after what was published before (an `end`
        event reaches them), and wait a moment for them to get it."""
        with self._lock:
            for client in self._clients:
                client.put(None)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                if not self._clients:
                    return
            time.sleep(0.02)


class LiveServer:
    """The page and its event stream, served from a thread until `close()`."""

    def __init__(self, page: str, address: tuple[str, int]) -> None:
        self.hub = Hub()
        self.page = page.encode()
        handler = _handler(self)
        try:
            self.httpd = ThreadingHTTPServer(address, handler)
        except OSError as exc:
            raise UsageError(f"cannot serve the live page on {address[0]}:{address[1]}: "
                             f"{exc.strerror or exc}",
                             hint="another program has that port: pick another with --port N "
                                  "(or --port 0 for any free one)") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="portlab-web")

    @property
    def url(self) -> str:
        host, port = str(self.httpd.server_address[0]), int(self.httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.hub.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(server: LiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the terminal shows the lab, not the web server's log

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", server.page)
            elif self.path == "/events":
                self._events()
            elif self.path == "/state":
                body = json.dumps({"step": server.hub.step, "ended": server.hub.ended})
                self._send(200, "application/json", body.encode())
            else:
                self._send(404, "text/plain", b"not here: try /\n")

        def do_POST(self) -> None:  # noqa: N802
            if self.path == "/next":
                if server.hub.on_next is not None:
                    server.hub.on_next()
                self._send(204, "text/plain", b"")
            else:
                self._send(404, "text/plain", b"not here\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            q = server.hub.subscribe()
            try:
                self.wfile.write(b"retry: 1000\n\n")
                self.wfile.flush()
                while True:  # until the hub's None: what was published before it is sent
                    try:
                        item = q.get(timeout=KEEPALIVE_SECONDS)
                    except queue.Empty:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        continue
                    if item is None:
                        break
                    kind, data = item
                    self.wfile.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page was closed
            finally:
                server.hub.unsubscribe(q)

    return Handler
