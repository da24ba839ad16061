"""The learner's brief (`portlab show`) and the one-line lab list (`portlab list`)."""

from __future__ import annotations

import re
import textwrap
from ipaddress import IPv4Network
from typing import Any

import click

from portlab import topology
from portlab.lab import Lab, render_text, template_context


def list_line(lab: Lab) -> str:
    return f"{lab.name:<12} {lab.difficulty:<13} {lab.title}\n{'':<26}concepts: " \
           f"{', '.join(lab.concepts)}"


FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.M | re.S)


def markdown(text: str, color: bool) -> str:
    """Terminal rendering of the little Markdown lab texts use: **bold**, `code`, paragraphs,
    lists, and ``` fenced blocks ``` (shown as they are: a config file, commands)."""
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


def _prose(text: str, color: bool) -> str:
    paras = re.split(r"\n\s*\n", text.strip())
    out = []
    for para in paras:
        lines = para.splitlines()
        if all(re.match(r"^\s*(\d+\.|[-*])\s", ln) or ln.startswith("   ") for ln in lines):
            block = "\n".join(_fill_item(ln) for ln in _join_items(lines))
        else:
            block = textwrap.fill(" ".join(ln.strip() for ln in lines), width=78,
                                  initial_indent="  ", subsequent_indent="  ")
        out.append(block)
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
        if re.match(r"^\s*(\d+\.|[-*])\s", ln) or not items:
            items.append(ln.strip())
        else:
            items[-1] += " " + ln.strip()
    return items


def _fill_item(item: str) -> str:
    marker = item.split(" ", 1)[0]
    return textwrap.fill(item, width=78, initial_indent="  ",
                         subsequent_indent="  " + " " * (len(marker) + 1))


def show(lab: Lab, subnets: dict[str, IPv4Network], *, instance: str | None, token: str,
         color: bool) -> str:
    ctx: dict[str, Any] = template_context(lab, subnets, instance or lab.name, token)

    def text(path: tuple[str | int, ...], template: str) -> str:
        return render_text(lab, path, template, ctx)

    def md(path: tuple[str | int, ...], template: str) -> str:
        return markdown(text(path, template), color)

    def head(text: str) -> str:
        return click.style(text, bold=True, underline=True) if color else text.upper()

    parts = [
        click.style(lab.title, bold=True) if color else lab.title,
        f"lab '{lab.name}' · {lab.difficulty} · concepts: {', '.join(lab.concepts)}",
        "",
    ]
    if lab.story:
        parts += [head("The story"), md(("story",), lab.story), ""]
    where = (f"running as instance '{instance}'" if instance
             else "addresses as they will be on `portlab up` of a first instance")
    parts += [head("The network") + f"  ({where})", topology.draw(lab, subnets), ""]
    for node in lab.nodes:
        ifaces = ", ".join(f"{i.name} {ctx['addr'][node.name + '.' + i.name]}"
                           for i in node.interfaces)
        parts.append(f"  {node.name:<10} {ifaces}")
        if node.role:
            parts.append(textwrap.fill(node.role, width=78, initial_indent=" " * 13,
                                       subsequent_indent=" " * 13))
    parts.append("")
    if lab.tasks:
        parts.append(head("Your tasks"))
        for k, task in enumerate(lab.tasks, 1):
            stretch = " (stretch)" if task.stretch else ""
            title = text(("tasks", k - 1, "title"), task.title)
            parts.append(f"  {k}. {click.style(title, bold=True) if color else title}{stretch}")
            parts.append(textwrap.indent(md(("tasks", k - 1, "text"), task.text), "   "))
            parts.append("")
    if lab.access:
        parts += [head("How to get in"), md(("access",), lab.access), ""]
    parts.append(head("What `portlab check` verifies") + "  (with real traffic)")
    for i, check in enumerate(lab.checks):
        parts.append(f"  - {check.id}: {text(('checks', i, 'title'), check.title)}")
    return "\n".join(parts).rstrip() + "\n"
