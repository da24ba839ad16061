"""The learner's brief (`portlab show`): story, network, tasks, how to get in, what is checked."""

from __future__ import annotations

import textwrap

import click

from portlab.model.context import Binding
from portlab.model.yamlsrc import Path as KeyPath
from portlab.views import layout, topology
from portlab.views.markdown import markdown


def show(binding: Binding, *, color: bool, student: str = "", width: int = 0) -> str:
    lab = binding.lab

    def text(path: KeyPath, template: str) -> str:
        return binding.render(path, template)

    def md(path: KeyPath, template: str) -> str:
        return markdown(text(path, template), color)

    def head(words: str) -> str:
        return click.style(words, bold=True, underline=True) if color else words.upper()

    parts = [
        click.style(lab.title, bold=True) if color else lab.title,
        f"lab '{lab.name}' · {lab.difficulty} · concepts: {', '.join(lab.concepts)}",
    ]
    if student:
        parts.append(f"the variant of student '{student}': its own ports and addresses")
    if lab.params:
        changed = lab.changed_params()
        shown = [f"{k}=?" if k in lab.hidden_params else
                 f"{k}={v}" + (f" (the lab's own: {lab.defaults[k]})" if k in changed else "")
                 for k, v in lab.params.items()]
        parts.append("params: " + ", ".join(shown)
                     + ("" if changed else " (others with --param NAME=VALUE)"))
    parts.append("")
    if lab.story:
        parts += [head("The story"), md(("story",), lab.story), ""]
    where = (f"running as instance '{binding.instance}'" if binding.running
             else "addresses as they will be on `portlab up` of a first instance")
    parts += [head("The network") + f"  ({where})", topology.draw(layout.of(binding), width), ""]
    for node in lab.nodes:
        six = binding.addresses6
        ifaces = ", ".join(f"{i.name} {binding.addresses[node.name + '.' + i.name]}"
                           + (f" {six[node.name + '.' + i.name]}" if i.ipv6 else "")
                           for i in node.interfaces)
        parts.append(f"  {node.name:<10} {ifaces}")
        if node.role:
            parts.append(textwrap.fill(binding.role(node.name), width=78,
                                       initial_indent=" " * 13, subsequent_indent=" " * 13))
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
