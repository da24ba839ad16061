"""The `demo:` part of a lab file: a trainer's guided walk through the lab (`portlab demo`).

Each step says something, may run one command on a node (its output shown),
may trace nodes while it runs, may run the checks, and one step applies the
reference solution. A demo takes the lab from untouched to solved: exactly
one step solves it, with a check step before it (the checks fail) and one
after it (they pass). The format is in docs/lab-format.md.
"""

from __future__ import annotations

from typing import Any

from portlab.model.reader import Reader
from portlab.model.types import DemoStep, Node
from portlab.model.yamlsrc import Path as KeyPath

STEP_KEYS = ("title", "say", "node", "run", "look", "trace", "check", "solve")
TRACE_KEYS = ("node", "filter")


def read(r: Reader, value: Any, nodes: tuple[Node, ...],
         solution: dict[str, str]) -> tuple[DemoStep, ...]:
    if value is None:
        return ()
    names = tuple(n.name for n in nodes)
    steps = []
    for i, spec in enumerate(r.seq(value, ("demo",))):
        path: KeyPath = ("demo", i)
        spec = r.mapping(spec, path, allowed=STEP_KEYS, required=("title", "say"))
        node = _node(r, spec.get("node"), path + ("node",), names, optional=True)
        run = r.text(spec.get("run"), path + ("run",), optional=True)
        if run and node is None:
            raise r.error(path + ("run",), "a step that runs a command says on which node: "
                          "add `node: NAME`")
        trace: tuple[str, ...] = ()
        trace_filter = ""
        if spec.get("trace") is not None:
            t = r.mapping(spec["trace"], path + ("trace",), allowed=TRACE_KEYS,
                          required=("node",))
            raw = t["node"] if isinstance(t["node"], list) else [t["node"]]
            trace = tuple(_node(r, n, path + ("trace", "node"), names) or "" for n in raw)
            if not trace:
                raise r.error(path + ("trace", "node"), "name at least one node to trace")
            trace_filter = r.text(t.get("filter"), path + ("trace", "filter"), optional=True)
        steps.append(DemoStep(
            title=r.text(spec["title"], path + ("title",)),
            say=r.text(spec["say"], path + ("say",)),
            node=node, run=run,
            look=r.text(spec.get("look"), path + ("look",), optional=True),
            trace=trace, trace_filter=trace_filter,
            check=r.boolean(spec.get("check"), path + ("check",)),
            solve=r.boolean(spec.get("solve"), path + ("solve",)),
        ))
    if not steps:
        raise r.error(("demo",), "a demo needs steps; leave `demo:` out for a lab without one")
    solves = [i for i, s in enumerate(steps) if s.solve]
    if len(solves) != 1:
        where = ("demo", solves[1], "solve") if len(solves) > 1 else ("demo",)
        raise r.error(where, "a demo solves the lab in exactly one step (`solve: true`): "
                      f"this demo has {len(solves)}")
    if not solution:
        raise r.error(("demo", solves[0], "solve"), "the lab has no `solution:` to apply")
    at = solves[0]
    if not any(s.check for s in steps[:at]):
        raise r.error(("demo",), "show the checks failing first: add a step with `check: true` "
                      "before the one that solves the lab")
    if not any(s.check for s in steps[at:]):
        raise r.error(("demo",), "show the checks passing at the end: add a step with "
                      "`check: true` at or after the one that solves the lab")
    return tuple(steps)


def _node(r: Reader, value: Any, path: KeyPath, names: tuple[str, ...], *,
          optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    name = r.text(value, path)
    if name not in names:
        raise r.error(path, f"no node called '{name}' in this lab (its nodes: "
                      f"{', '.join(names)})")
    return name
