"""Load YAML and remember the line of every key, so lab errors can say file:line.

PyYAML's safe loader silently keeps the last of two equal keys and forgets
where things came from. This module composes the node tree itself and builds
plain Python values (dict, list, str, int, float, bool, None) plus a table
from key path to line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from portlab.errors import LabError

Path = tuple[str | int, ...]


@dataclass
class Source:
    """A loaded YAML document: its data and the line of each path in it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """Line of `path`, or of the nearest enclosing path that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Path, message: str) -> LabError:
        return LabError(self.file, dotted(path), message, self.line(path))


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load(text: str, file: str) -> Source:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise LabError(file, "", f"not valid YAML: {problem}", line) from None
    src = Source(file=file, data=None)
    if node is None:
        return src
    src.data = _build(node, (), src)
    return src


_constructor = yaml.SafeLoader("")


def _build(node: yaml.Node, path: Path, src: Source) -> Any:
    src.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise src.error(path, "YAML merge keys (<<) are not supported in lab files")
            key = _scalar(key_node, path, src)
            if not isinstance(key, str):
                key = str(key) if isinstance(key, (int, float, bool)) else None
            if key is None:
                raise LabError(src.file, dotted(path), "keys must be plain words",
                               key_node.start_mark.line + 1)
            if key in out:
                raise LabError(src.file, dotted(path + (key,)),
                               f"appears twice (first on line {src.lines[path + (key,)]})",
                               key_node.start_mark.line + 1)
            src.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, path + (key,), src)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), src) for i, item in enumerate(node.value)]
    return _scalar(node, path, src)


def _scalar(node: yaml.Node, path: Path, src: Source) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise LabError(src.file, dotted(path), "keys must be plain words", node.start_mark.line + 1)
    try:
        return _constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise LabError(src.file, dotted(path), f"cannot read value: {exc}",
                       node.start_mark.line + 1) from None
