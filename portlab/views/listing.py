"""`portlab list`: a line per lab (in the suggested order), and the labs that do not load."""

from __future__ import annotations

from portlab.model.catalog import Broken
from portlab.model.types import Lab


def labs(found: list[Lab]) -> str:
    lines = []
    for lab in found:
        lines.append(f"{lab.name:<12} {lab.difficulty:<13} {lab.title}")
        lines.append(f"{'':<26}teaches: {', '.join(lab.concepts)}")
    return "".join(line + "\n" for line in lines)


def broken(found: list[Broken]) -> str:
    one = len(found) == 1
    lines = [f"portlab: {len(found)} {'lab does' if one else 'labs do'} not load, so "
             f"{'it is' if one else 'they are'} not listed:"]
    for item in found:
        lines.append(f"  {item.name}: {item.error}")
    lines.append("  (`portlab show NAME` says the same; the other labs work as usual)")
    return "".join(line + "\n" for line in lines)
