"""`portlab demo`"""

from __future__ import annotations

import sys
import threading

import click

from portlab.cli.common import color, core, instance_option, page_options, progress, web_bind
from portlab.errors import ExitCode


class _Pace:
    """When the next step starts: on Enter, on the page's Next, or after a delay (--auto)."""

    def __init__(self, auto: float | None, web: bool) -> None:
        self.auto = auto
        self.web = web
        self.go = threading.Event()
        self.stdin_done = False
        threading.Thread(target=self._read, daemon=True, name="demo-stdin").start()

    def _read(self) -> None:
        try:
            for _ in sys.stdin:
                self.go.set()
        except (OSError, ValueError):
            pass
        self.stdin_done = True
        self.go.set()

    def wait(self) -> None:
        if self.auto is not None:
            self.go.wait(timeout=self.auto)
        elif not (self.stdin_done and not self.web):  # no more Enter and no page: go on
            self.go.wait()
        self.go.clear()


@click.command("demo")
@click.argument("lab")
@instance_option
@click.option("--auto", "auto", is_flag=True,
              help="Go on by itself: each step after --delay seconds (Enter still skips ahead).")
@click.option("--delay", type=click.FloatRange(0, 600), default=4.0, show_default=True,
              metavar="S", help="With --auto: the seconds between steps.")
@click.option("--web", is_flag=True,
              help="Also show it live in the browser on 127.0.0.1: the diagram with its links "
                   "lighting up as packets cross them, NAT translations beside the router, "
                   "and the steps as slides (with a Next button).")
@page_options
def command(lab: str, instance: str | None, auto: bool, delay: float, web: bool, port: int,
            bind: str, allow_remote: bool) -> None:
    """A guided walk through a lab, for a trainer in front of a room.

    Each step of the lab's `demo:` says what is going on, runs a command on a
    node and shows its output, traces the nodes it names meanwhile (real
    packets, in words), and says what to look at. The checks fail before the
    solution is applied and pass after; the walk ends with the lab solved
    and up (`portlab check` passes).

    It starts the lab if it is not up. Steps go on with Enter, or by
    themselves with --auto.

    \b
      portlab demo forwarding
      portlab demo vpn --auto --delay 8
      portlab demo firewall --web        the live page on http://127.0.0.1:8765/

    Exit codes: 0 the lab ended solved, 1 its checks did not all pass.
    """
    from portlab.views import demo as view

    address = web_bind(bind, port, allow_remote) if web else None
    inst, the_lab, bound, started = core().demo(lab, instance=instance, progress=progress())
    styled = color()
    pace = _Pace(delay if auto else None, web)
    server = None
    if address is not None:
        from portlab.web.serve import LiveServer

        server = LiveServer(core().live_page(inst.name, mode="demo"), address).start()
        server.hub.on_next = pace.go.set
        click.echo(f"live page: {server.url}  (open it in a browser; Next there also steps)",
                   err=True)
    last = None
    before_solve = None
    total = len(the_lab.demo)
    try:
        click.echo(f"Demo of lab '{the_lab.name}' ({total} steps) on instance '{inst.name}'"
                   + (", started for it" if started else ""))
        for index in range(total):
            if index > 0 or not auto:
                click.echo(view.waiting(delay if auto else None, web), err=True)
                pace.wait()
            words = core().demo_texts(bound, index)
            step = the_lab.demo[index]
            click.echo(view.intro(index, total, words, step.node, color=styled))
            if server is not None:
                server.hub.publish("step", {"index": index, "total": total, **words,
                                            "command": words["run"], "node": step.node,
                                            "done": False, "checks": None, "output": ""})
            result = core().demo_step(
                inst, the_lab, bound, index,
                on_event=None if server is None else
                (lambda e: server.hub.publish(e.type, e.to_json())))
            click.echo(view.outcome(result, color=styled))
            if server is not None:
                server.hub.publish("step", {**view.step_json(result), "done": True})
            if result.report is not None:
                last = result.report
                if before_solve is None and not any(s.solve for s in the_lab.demo[:index + 1]):
                    before_solve = result.report
        if before_solve is not None and before_solve.passed:
            click.echo("note: the checks passed before the demo solved the lab, so the room "
                       f"did not see them fail: start from a fresh lab (`portlab down "
                       f"{the_lab.name}`, then the demo again)", err=True)
        solved = last is not None and last.passed
        click.echo(view.finished(solved, started, the_lab.name))
        if server is not None:
            server.hub.publish("end", {"text": "the demo is over" +
                                       (": the lab is solved" if solved else "")})
    finally:
        if server is not None:
            server.close()
    sys.exit(int(ExitCode.OK if solved else ExitCode.CHECKS_FAILED))
