"""Run a lab's scripts (its reference solution, a known wrong one) on the nodes of an instance."""

from __future__ import annotations

from collections.abc import Callable

from portlab.errors import RuntimeProblem
from portlab.model.types import Lab
from portlab.model.yamlsrc import Path as KeyPath
from portlab.runtime.instance import Instance


def run_scripts(inst: Instance, lab: Lab, scripts: dict[str, str],
                where: KeyPath = ("solution",),
                on_output: Callable[[str, str], None] | None = None) -> None:
    """Run a shell script (a template of the lab) on each named node, inside the node, as
    root, in the lab's order. `where` is the scripts' key in the lab file, named if a
    template fails."""
    binding = inst.binding(lab)
    for node, script in scripts.items():
        text = binding.render((*where, node), script)
        result = inst.exec(node, ["sh", "-e", "-c", text])
        if on_output is not None:
            on_output(node, (result.stdout + result.stderr).strip())
        if result.exit_code != 0:
            raise RuntimeProblem(f"the script on {node} failed (exit {result.exit_code}):\n    "
                                 + (result.stderr or result.stdout).strip()[-600:])
