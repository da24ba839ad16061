"""A trace's events as terminal lines, or as JSON lines (`portlab trace`)."""

from __future__ import annotations

import json

import click

from portlab.errors import untrusted
from portlab.trace.events import Connection, Event

COLOURS = {"opens": "green", "accepts": "green", "refused": "red", "closed": "red",
           "firewall": "red", "NAT": "magenta"}


def line(event: Event, *, label: bool, width: int = 0, color: bool = False) -> str:
    """One line: `router  wan in  TCP 198.51.100.10:54668 → 198.51.100.1:25565  opens ...`;
    the node's name leads when several nodes are traced."""
    text = untrusted(event.text())  # addresses and words from tcpdump on a node
    if color:
        for word, colour in COLOURS.items():
            if word in text:
                text = click.style(text, fg=colour, bold=isinstance(event, Connection))
                break
    return f"{untrusted(event.node):<{width}}  {text}" if label else text


def json_line(event: Event) -> str:
    return json.dumps(event.to_json(), sort_keys=True)


def started(names: list[str], forwarding: list[str], expr: str, own: bool = False) -> str:
    """The first line: what is traced, with which filter (`own`: the lab's)."""
    tools = ", ".join(f"{n} (packets{', connections and NAT' if n in forwarding else ''})"
                      for n in names)
    which = "the lab's own filter" if own else "filter"
    more = " (--every-packet for all)" if own else ""
    return f"tracing {tools}; {which} '{expr}'{more}. Ctrl-C stops."
