"""The little Markdown lab texts use, for a terminal: **bold**, `code`, paragraphs, lists,
and ``` fenced blocks ``` (shown as they are: a config file, commands)."""

from __future__ import annotations

import re
import textwrap

import click

from portlab.views.screen import protect_code, release_code

FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)


def markdown(text: str, color: bool) -> str:
    parts = FENCE.split(text.strip())
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            lines = textwrap.dedent(part).rstrip().splitlines()
            block = "\n".join(("    " + ln) if ln.strip() else "" for ln in lines)
            out.append(click.style(block, fg="cyan") if color else block)
        elif part.strip():
            out.append(_prose(part, color))
    return "\n\n".join(out)


ITEM = re.compile(r"^\s*(\d+\.|[-*])\s")


def _prose(text: str, color: bool) -> str:
    paras = re.split(r"\n\s*\n", text.strip())
    out = []
    for para in paras:
        lines = para.splitlines()
        # A list starts at its first item; every later line is an item of its own or goes on
        # the one before (indented or not, as Markdown's continuation lines do).
        first = next((k for k, ln in enumerate(lines) if ITEM.match(ln)), len(lines))
        blocks = []
        if first:
            blocks.append(release_code(textwrap.fill(
                protect_code(" ".join(ln.strip() for ln in lines[:first])), width=78,
                initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False,
                break_long_words=False)))
        if first < len(lines):
            blocks.append("\n".join(_fill_item(ln) for ln in _join_items(lines[first:])))
        out.append("\n".join(blocks))
    rendered = "\n\n".join(out)
    if color:
        rendered = re.sub(r"\*\*(.+?)\*\*", lambda m: click.style(m.group(1), bold=True),
                          rendered, flags=re.S)
        rendered = re.sub(r"`([^`]+)`", lambda m: click.style(m.group(1), fg="cyan"), rendered)
    else:
        rendered = re.sub(r"\*\*(.+?)\*\*", r"\1", rendered, flags=re.S)
        rendered = re.sub(r"(?<!\w)\*(\S[^*]*?)\*(?!\w)", r"\1", rendered)
    return rendered


def _join_items(lines: list[str]) -> list[str]:
    items: list[str] = []
    for ln in lines:
        if ITEM.match(ln) or not items:
            items.append(ln.strip())
        else:
            items[-1] += " " + ln.strip()
    return items


def _fill_item(item: str) -> str:
    marker = item.split(" ", 1)[0]
    return release_code(textwrap.fill(protect_code(item), width=78, initial_indent="  ",
                                      subsequent_indent="  " + " " * (len(marker) + 1),
                                      break_on_hyphens=False, break_long_words=False))
