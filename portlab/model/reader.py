"""Typed access to a loaded lab file, with errors that name the file, the line and the key.

Numbers (ports, host numbers, prefixes, timeouts) may be written as a
template over the lab's params, e.g. `port: "{{ params.game_port }}"`. The
reader renders such a template with the params alone (nothing else exists
yet when numbers are read: addresses follow from them) and validates the
result exactly like a number written out, naming the template and the params
in any error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from portlab.errors import LabError
from portlab.model import templating
from portlab.model.types import ParamValue
from portlab.model.yamlsrc import Path as KeyPath
from portlab.model.yamlsrc import Source


class Reader:
    """Typed access to a Source. `params` are what number templates may use."""

    def __init__(self, src: Source, params: Mapping[str, ParamValue] | None = None,
                 changed: Mapping[str, ParamValue] | None = None) -> None:
        self.src = src
        self.params: dict[str, ParamValue] = dict(params or {})
        self.changed: dict[str, ParamValue] = dict(changed or {})  # overrides, named in errors

    def error(self, path: KeyPath, message: str) -> LabError:
        return self.src.error(path, message)

    def mapping(self, value: Any, path: KeyPath, *, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping (key: value lines), got {kind(value)}")
        for key in value:
            if key not in allowed:
                near = closest(key, allowed)
                extra = f"; did you mean '{near}'?" if near else ""
                raise self.error(path + (key,),
                                 f"unknown key. Allowed here: {', '.join(allowed)}{extra}")
        for key in required:
            if key not in value:
                raise self.error(path, f"missing required key '{key}'")
        return value

    def text(self, value: Any, path: KeyPath, *, optional: bool = False, default: str = "",
             pattern: re.Pattern[str] | None = None, what: str = "") -> str:
        if value is None and optional:
            return default
        if not isinstance(value, str):
            raise self.error(path, f"expected text, got {kind(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.error(path, f"'{value}' is not a valid {what or 'name'}")
        return value

    def unique(self, name: str, path: KeyPath, seen: set[str], noun: str = "") -> str:
        """`name`, which must not be in `seen` yet ("task id 'x' is used twice"); added to it."""
        if name in seen:
            raise self.error(path, f"{noun + ' ' if noun else ''}'{name}' is used twice")
        seen.add(name)
        return name

    def integer(self, value: Any, path: KeyPath, *, low: int, high: int) -> int:
        value, source = self._number(value, path, whole=True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected a whole number, got {kind(value)}")
        if not low <= value <= high:
            raise self.error(path, f"expected a number from {low} to {high}, got {value}{source}")
        return value

    def seconds(self, value: Any, path: KeyPath, *, high: float = 60) -> float:
        value, source = self._number(value, path, whole=False)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"expected a number, got {kind(value)}")
        if not 0 < value <= high:
            raise self.error(path, f"expected a number of seconds from 0 to {high:g}, got "
                             f"{value}{source}")
        return float(value)

    def _number(self, value: Any, path: KeyPath, *, whole: bool) -> tuple[Any, str]:
        """A number as written, or rendered from a template over params; and, for messages,
        where a rendered one came from (empty for a number written out)."""
        if not isinstance(value, str) or not templating.is_template(value):
            return value, ""
        where = f" (from '{value}'{self._with()})"
        try:
            out = templating.render(value, self.number_context()).strip()
        except Exception as exc:
            raise self.error(path, self._template_problem(exc)) from None
        pattern = r"[+-]?\d+" if whole else r"[+-]?(\d+(\.\d*)?|\.\d+)"
        if not re.fullmatch(pattern, out):
            noun = "a whole number" if whole else "a number"
            raise self.error(path, f"'{value}' gives '{out}'{self._with()}, which is not {noun}")
        return (int(out) if whole else float(out)), where

    def number_context(self) -> dict[str, Any]:
        """What a number template (or an interface name's) may use: the params alone."""
        return {"params": templating.Table("params", self.params)}

    def _with(self) -> str:
        if not self.changed:
            return ""
        return ", with " + ", ".join(f"{k}={v}" for k, v in sorted(self.changed.items()))

    def _template_problem(self, exc: Exception) -> str:
        problem = templating.describe(exc)
        if "is undefined" in problem:  # a name other than params: addresses come later
            problem += " (a number may be a template over params only, like {{ params.port }})"
        return problem

    def boolean(self, value: Any, path: KeyPath, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {kind(value)}")
        return value

    def seq(self, value: Any, path: KeyPath, *, optional: bool = True) -> list[Any]:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, got {kind(value)}")
        return value

    def names(self, value: Any, path: KeyPath, pattern: re.Pattern[str],
              what: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.error(path, f"expected a mapping of {what} names to their settings")
        for key in value:
            if not pattern.fullmatch(key):
                raise self.error(path + (key,), f"'{key}' is not a valid {what} name "
                                 f"(lowercase letters, digits and '-', starting with a letter)")
        return value


def kind(value: Any) -> str:
    """What a value is, in words, for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text '{value[:40]}'"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return type(value).__name__


def closest(word: str, options: tuple[str, ...] | list[str]) -> str | None:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.7)
    return match[0] if match else None
