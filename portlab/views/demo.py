"""A demo's steps in the terminal (`portlab demo`): what to say, the command and its output,
the packets traced meanwhile, what to look at, and the checks."""

from __future__ import annotations

import textwrap
from typing import Any

import click

from portlab.demo.walk import StepResult
from portlab.errors import untrusted
from portlab.views import trace as trace_view
from portlab.views.markdown import markdown
from portlab.views.report import as_dict, terminal

MAX_EVENTS = 40


def _head(words: str, color: bool) -> str:
    return click.style(words, bold=True, fg="cyan") if color else words


def intro(index: int, total: int, texts: dict[str, str], node: str | None, *,
          color: bool) -> str:
    """Before the step runs: its title and what the trainer says."""
    out = ["", _head(f"── Step {index + 1} of {total} · {texts['title']}", color),
           textwrap.indent(markdown(texts["say"].strip(), color), "  ")]
    if texts["run"] and node:
        out.append(f"  {node}# {texts['run'].strip()}")
    return "\n".join(out)


def outcome(result: StepResult, *, color: bool) -> str:
    out: list[str] = []
    if result.solved:
        out.append("  (the reference solution is applied now)")
    if result.output:  # what the command printed on the node: made safe to show
        out.append(textwrap.indent(untrusted(result.output), "  │ "))
    if result.traced:
        shown = result.events[:MAX_EVENTS]
        label = len(result.traced) > 1
        width = max(len(n) for n in result.traced)
        out.append(f"  what {', '.join(result.traced)} saw meanwhile "
                   f"({len(result.events)} events):")
        out += ["    " + trace_view.line(e, label=label, width=width, color=color)
                for e in shown]
        if len(result.events) > len(shown):
            out.append(f"    … and {len(result.events) - len(shown)} more")
        if not result.events:
            out.append("    nothing crossed it")
    if result.look:
        out.append(textwrap.indent(markdown("Look: " + result.look.strip(), color), "  "))
    if result.report is not None:
        out.append(textwrap.indent(terminal(result.report, color=color), "  "))
    return "\n".join(out)


def waiting(auto: float | None, web: bool) -> str:
    if auto is not None:
        return f"  (next step in {auto:g} s; Enter for it now)"
    return "  [Enter: next step" + (", or Next on the page" if web else "") + "]"


def finished(solved: bool, started_here: bool, lab: str) -> str:
    if solved:
        end = "The demo is over and the lab is solved: every check passes."
    else:
        end = "The demo is over, but the lab's checks do not all pass (see above)."
    keep = f"The lab stays up: `portlab check`, `portlab down {lab}` when done."
    return "\n" + end + "\n" + keep + ("" if started_here else "")


def step_json(result: StepResult) -> dict[str, Any]:
    """A step as the live page gets it (its `step` event)."""
    return {"index": result.index, "total": result.total, "title": result.title,
            "say": result.say, "look": result.look, "node": result.node,
            "command": result.command, "output": result.output, "exit_code": result.exit_code,
            "traced": result.traced, "solved": result.solved,
            "events": [e.to_json() for e in result.events],
            "checks": None if result.report is None else as_dict(result.report)}
