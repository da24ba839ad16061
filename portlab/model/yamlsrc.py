"""Load YAML and remember the line of every key, so lab errors can say file:line.

PyYAML's safe loader silently keeps the last of two equal keys and forgets
where things came from. This module composes the node tree itself and builds
plain Python values (dict, list, str, int, float, bool, None) plus a table
from key path to line number.

Lab files may come from anyone, so YAML's extras are errors that name the key:
aliases (never expanded, so a "billion laughs" file costs nothing), merge
keys, tags other than the plain ones (!!python/... is never constructed), and
nesting deeper than MAX_DEPTH.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
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
        return line_of(self.lines, path)

    def error(self, path: Path, message: str) -> LabError:
        return LabError(self.file, dotted(path), message, self.line(path))


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path` in `lines`, or of the nearest enclosing path that has one."""
    while path not in lines:
        if not path:
            return None
        path = path[:-1]
    return lines[path]


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part or '""')
    return out


def load(text: str, file: str) -> Source:
    """The document in `text`, read from `file`; a LabError that says where when it is not
    one a lab may use. The same text is composed once (a class graded at once loads its lab
    once per student); each caller gets its own copy of the data."""
    src = _load(text, file) if len(text) <= CACHED else _load.__wrapped__(text, file)
    return Source(src.file, copy.deepcopy(src.data), dict(src.lines))


CACHED = 1 << 20  # characters: a lab file is a few dozen KiB; a larger text is not kept


@functools.lru_cache(maxsize=32)
def _load(text: str, file: str) -> Source:
    node = _plain(text)
    try:
        if node is None:
            loader = _Loader(text, file)
            try:
                node = loader.get_single_node()
            finally:
                loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, like NUL
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else "a byte"
        raise LabError(file, "", f"not valid YAML: the character {char} is not allowed",
                       _line_at(text, exc.position)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LabError(file, "", f"not valid YAML: {problem}", line) from None
    src = Source(file=file, data=None)
    if node is None:
        return src
    src.data = _build(node, (), src)
    return src


_CLoader = getattr(yaml, "CSafeLoader", None)  # libyaml's, when PyYAML was built with it
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _plain(text: str) -> yaml.Node | None:
    """The node tree of a plain document (one document; no alias, no anchor; nested less than
    MAX_DEPTH deep), composed by libyaml, 15 times faster than _Loader: read first as events
    (libyaml's parser, no recursion), which say whether it is plain. None for anything else
    (an empty or invalid document too): _Loader then composes it, refuses it or says what is
    wrong, exactly as without libyaml."""
    if _CLoader is None:
        return None
    try:
        depth = deepest = 0
        for event in yaml.parse(text, Loader=_CLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                return None
            if isinstance(event, _OPEN):
                depth += 1
                deepest = max(deepest, depth)
                if deepest >= MAX_DEPTH - 1:
                    return None
            elif isinstance(event, _CLOSE):
                depth -= 1
        node: yaml.Node | None = yaml.compose(text, Loader=_CLoader)
    except Exception:  # noqa: BLE001 (invalid YAML, or text libyaml cannot take at all,
        return None  # such as a lone surrogate: portlab's own composer says what is wrong)
    return node


def _line_at(text: str, position: int) -> int:
    """The line (from 1) of a character position, counting line breaks as YAML does."""
    return len(re.findall(r"\r\n|[\r\n\x85\u2028\u2029]", text[:position])) + 1


MAX_DEPTH = 32  # a lab nests about 6 levels deep; much deeper is a mistake or an attack
_ALIAS = "tag:portlab,2024:alias"  # an alias, kept as it is written and never expanded
_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_YAML + t for t in ("null", "bool", "int", "float", "str", "timestamp", "binary")}
_WHAT = {"null": "nothing", "bool": "true/false", "int": "a whole number", "float": "a number",
         "timestamp": "a date", "binary": "base64 data"}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing with two changes. An alias (*name) becomes a marker
    that _build reports with its key instead of a reference to the anchored node: so no
    "billion laughs" expansion and no endless recursion through a cycle. And nesting deeper
    than MAX_DEPTH stops at once, before Python's recursion limit does."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self.get_event()
            start: Any = event.start_mark
            return yaml.ScalarNode(_ALIAS, event.anchor, start, start)
        if self.depth >= MAX_DEPTH:
            raise LabError(self.file, "", f"nested more than {MAX_DEPTH} levels deep",
                           event.start_mark.line + 1)
        self.anchors.clear()  # never looked up (aliases are refused): a reused name is harmless
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_constructor = yaml.SafeLoader("")
_constructing = threading.Lock()  # the constructor keeps state while it builds: one at a time


def _tag(tag: str) -> str:
    return "!!" + tag[len(_YAML):] if tag.startswith(_YAML) else tag


def _refuse_special(node: yaml.Node, path: Path, src: Source) -> None:
    """Aliases and tags other than YAML's plain ones (!!python/..., !!set, !custom) are errors."""
    line = node.start_mark.line + 1
    if node.tag == _ALIAS:
        raise LabError(src.file, dotted(path), f"YAML aliases (*{node.value}) are not supported "
                       "in lab files; write the value out", line)
    if isinstance(node, yaml.MappingNode):
        allowed = {_YAML + "map"}
    elif isinstance(node, yaml.SequenceNode):
        allowed = {_YAML + "seq"}
    else:
        allowed = _SCALAR_TAGS
    if node.tag not in allowed:
        raise LabError(src.file, dotted(path),
                       f"YAML tag {_tag(node.tag)} is not supported in lab files", line)


def _build(node: yaml.Node, path: Path, src: Source) -> Any:
    src.lines.setdefault(path, node.start_mark.line + 1)
    _refuse_special(node, path, src)
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
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode):
        raise LabError(src.file, dotted(path), "keys must be plain words", line)
    _refuse_special(node, path, src)
    try:
        with _constructing:
            try:
                value = _constructor.construct_object(node, deep=True)
            finally:  # the shared constructor would otherwise keep every node it ever built
                _constructor.constructed_objects.clear()
                _constructor.recursive_objects.clear()
    except Exception as exc:  # PyYAML raises ValueError, KeyError ... for values like 2020-13-45
        problem = getattr(exc, "problem", None) or (str(exc) if isinstance(exc, ValueError) else "")
        what = _WHAT.get(node.tag[len(_YAML):], _tag(node.tag))
        shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
        why = f" ({problem})" if problem else ""
        raise LabError(src.file, dotted(path), f"cannot read '{shown}' as {what}{why}; "
                       "put it in quotes if it is meant as text", line) from None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a UTF-16 surrogate, from an escape like "\ud83c"
            raise LabError(src.file, dotted(path), "is not valid text: it holds a UTF-16 "
                           "surrogate (from an escape like \\ud83c); write the character "
                           "itself, or escape it whole like \\U0001F3AE", line) from None
    return value
