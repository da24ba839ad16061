"""Run a classroom: take its lock, clear what a killed one left, serve until Ctrl-C, remove
every lab it started. What `portlab classroom serve` calls (through portlab.core)."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portlab import locks, runtime
from portlab.errors import PortlabError, UsageError
from portlab.names import scope
from portlab.progress import Progress
from portlab.web import xterm
from portlab.web.classroom import PREFIX, Classroom, Seat

IDLE_EVERY = 30.0  # seconds between two looks for idle seats


@dataclass(frozen=True)
class Settings:
    lab: str
    seats: int = 0
    roster: tuple[str, ...] = ()
    salt: str | None = None
    host: str = "127.0.0.1"
    port: int = 8780
    tls_cert: Path | None = None
    tls_key: Path | None = None
    idle_minutes: float = 30.0
    origins: tuple[str, ...] = ()
    workers: int = 4
    max_running: int = 0  # seats with a lab up at once (0: every seat)


class Pages:
    """The HTML of one classroom (portlab.views.html), and the brief of a seat's lab."""

    def __init__(self, api: Any, lab: str) -> None:
        from portlab.views import html

        self.api = api
        self.html = html
        self.lab = api.get_lab(lab)
        self.nodes: list[str] = api.workplaces(self.lab)
        self.title = self.lab.title

    def student(self, seat: Seat, *, tls: bool) -> str:
        return self.html.student_page(self.title, seat=seat.label, nodes=self.nodes,
                                      csrf=seat.csrf, tls=tls)

    def dashboard(self, room: Classroom, *, tls: bool) -> str:
        return self.html.dashboard_page(self.title, lab=room.lab, checks=room.check_ids,
                                        csrf=room.instructor_csrf, tls=tls, nodes=self.nodes)

    def brief(self, seat: Seat) -> tuple[str, str]:
        bound, _ = self.api.binding(self.lab.name, instance=seat.instance)
        return (self.api.show(self.lab.name, instance=seat.instance, width=100),
                self.html.lab_picture(bound))


def leftovers() -> list[str]:
    """Instances of this scope named like a classroom's seats."""
    return sorted(n for n in runtime.instances() if n.startswith(PREFIX))


MAX_RECORD = 64 * 1024  # bytes of the record read (60 seats' names take under 1 KB)


def record_path() -> Path:
    """Where a classroom writes down each seat's instance before it starts it: what a
    classroom killed outright left is then told from an instance someone made by hand."""
    return locks.lock_dir() / f"classroom-{scope()}.seats"


def recorded() -> set[str]:
    try:
        with open(record_path(), encoding="utf-8", errors="replace") as fh:
            text = fh.read(MAX_RECORD)
    except OSError:
        return set()
    return {line.strip() for line in text.splitlines() if line.strip().startswith(PREFIX)}


class Recording:
    """The core API as the classroom uses it, with each seat's instance written down before
    its lab starts (so a SIGKILL in the middle of a start leaves it on record)."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self._known = recorded()

    def up(self, name: str, *, instance: str | None = None, student: str | None = None,
           salt: str | None = None) -> Any:
        if instance and instance not in self._known:
            try:
                with open(record_path(), "a", encoding="utf-8") as fh:
                    fh.write(f"{instance}\n")
            except OSError:
                pass  # no record: a seat left by a SIGKILL is then named, not removed
            self._known.add(instance)
        return self._api.up(name, instance=instance, student=student, salt=salt)

    def down(self, name: str | None = None, *, instance: str | None = None) -> Any:
        return self._api.down(name, instance=instance)

    def check(self, name: str | None = None, *, instance: str | None = None) -> Any:
        return self._api.check(name, instance=instance)


def take_over(api: Any, progress: Progress) -> None:
    """Remove the seats a classroom killed outright left (they are on its record). An
    instance named like a seat that no classroom started is someone's own: stop, and say so."""
    left = leftovers()
    strangers = [name for name in left if name not in recorded()]
    if strangers:
        raise UsageError(f"{', '.join(strangers)}: named like a classroom's seats, but no "
                         "classroom started them here, and the classroom's seats need these "
                         "names",
                         hint=f"remove them (`portlab down -i {strangers[0]}`), or serve the "
                              "class under another PORTLAB_SCOPE")
    for name in left:
        progress.note(f"removing {name}, left by a classroom that was stopped by force")
        api.down(instance=name)
    forget()


def forget() -> None:
    try:
        record_path().unlink(missing_ok=True)
    except OSError:
        pass  # another user's file in the shared folder: theirs to remove


def serve(api: Any, settings: Settings, progress: Progress,
          links: Callable[[Classroom, str], None]) -> int:
    """Serve until SIGINT or SIGTERM; returns how many labs were removed at the end."""
    if settings.tls_cert is None and settings.tls_key is not None or \
            settings.tls_key is None and settings.tls_cert is not None:
        raise UsageError("--tls-cert and --tls-key go together")
    tls = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot use the TLS certificate and key: {exc}") from None
    pages = Pages(api, settings.lab)
    checks = [c for c, _, _ in api.check_list(settings.lab)]
    with locks.classroom_lock(scope()):
        take_over(api, progress)  # what a classroom killed outright (SIGKILL) left
        if not xterm.present():
            progress.note("fetching xterm.js (once) from the webssh package on PyPI")
            xterm.fetch()
        if not api.image_exists(api.image_tag()):
            api.image_build(progress)
        room = Classroom(settings.lab, Recording(api), seats=settings.seats,
                         roster=list(settings.roster), salt=settings.salt, checks=checks,
                         workers=settings.workers, max_running=settings.max_running)
        from portlab.web.app import Server

        server = Server(room, pages=pages, terminal=api.terminal, origins=settings.origins,
                        trace=lambda instance: api.trace(instance=instance).start(),
                        tls=tls is not None)
        scheme = "https" if tls else "http"
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        try:
            asyncio.run(_run(server, settings, tls,
                             lambda port: links(room, f"{scheme}://{host}:{port}")))
        finally:
            progress.note("stopping: removing every lab this classroom started")
            removed = room.close(progress.note)
            try:
                if not leftovers():  # every seat gone: nothing on record is left
                    forget()
            except PortlabError:
                pass  # the engine is gone: the record stays for the next classroom
    return removed


async def _run(server: Any, settings: Settings, tls: ssl.SSLContext | None,
               started: Callable[[int], None]) -> None:
    from aiohttp import web

    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UsageError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
                         hint="another program uses that port: pick one with --port") from None
    started(int(runner.addresses[0][1]))  # the port asked for, or the one given for 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), IDLE_EVERY)
            except asyncio.TimeoutError:
                server.room.idle(settings.idle_minutes * 60)
    finally:
        await runner.cleanup()
