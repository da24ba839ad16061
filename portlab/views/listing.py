"""`portlab list`: a line per lab (in the suggested order), and the labs that do not load."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portlab.model.catalog import Broken
from portlab.model.types import Lab

SOLVED = "solved"


def labs(found: list[Lab], done: Mapping[str, Any] | None = None) -> str:
    """The labs in path order, grouped where the difficulty changes; solved ones marked."""
    done = done or {}
    width = max([len(lab.name) for lab in found] + [12])
    lines: list[str] = []
    group = None
    for lab in found:
        if lab.difficulty != group:
            group = lab.difficulty
            lines.append(f"{group}:")
        mark = SOLVED if lab.name in done else ""
        lines.append(f"  {lab.name:<{width}}  {mark:<6}  {lab.title}")
        lines.append(f"  {'':<{width}}  {'':<6}  teaches: {', '.join(lab.concepts)}")
    return "".join(line + "\n" for line in lines)


def summary(found: list[Lab], done: Mapping[str, Any], following: Lab | None) -> str:
    solved = sum(lab.name in done for lab in found)
    if following is None:
        return f"\nAll {len(found)} labs solved. Well done.\n" if found else ""
    return (f"\n{solved} of {len(found)} solved. Next on the path: {following.name} "
            f"(`portlab next` says more).\n")


def suggestion(following: Lab | None, found: list[Lab], done: Mapping[str, Any]) -> str:
    """`portlab next`: the first unsolved lab of the path, and how to start it."""
    solved = sum(lab.name in done for lab in found)
    if following is None:
        return (f"You have solved all {len(found)} labs of the path. Try one again with "
                "other values: `portlab up LAB --param NAME=VALUE`.\n")
    where = found.index(following) + 1
    lines = [f"Next: {following.name} ({following.difficulty}, lab {where} of {len(found)}; "
             f"{solved} solved so far)",
             f"  {following.title}",
             f"  {following.summary}",
             f"  teaches: {', '.join(following.concepts)}",
             "",
             f"  portlab show {following.name}".ljust(32) + "the story and your tasks",
             f"  portlab up {following.name}".ljust(32) + "start it",
             "  portlab check".ljust(32) + "when you are done: a solved lab is remembered"]
    return "".join(line + "\n" for line in lines)


def broken(found: list[Broken]) -> str:
    one = len(found) == 1
    lines = [f"portlab: {len(found)} {'lab does' if one else 'labs do'} not load, so "
             f"{'it is' if one else 'they are'} not listed:"]
    for item in found:
        lines.append(f"  {item.name}: {item.error}")
    lines.append("  (`portlab show NAME` says the same; the other labs work as usual)")
    return "".join(line + "\n" for line in lines)
