"""Jinja2 for lab texts: sandboxed, strict, one environment.

Lab files come from trainers and students, so their templates run in Jinja2's
sandbox (no attribute access to Python internals) and any undefined name is
an error instead of an empty string.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment


class Table(dict[str, Any]):
    """A mapping templates see by a name (`params`, `addr`, ...), so that a missing key is
    reported as "params has no 'gameport' (it has: game_port, photos_port)"."""

    def __init__(self, label: str, items: dict[str, Any]) -> None:
        super().__init__(items)
        self._table_label = label  # underscored: the sandbox never shows it to a template


class _Undefined(jinja2.StrictUndefined):
    @property
    def _undefined_message(self) -> str:
        obj = self._undefined_obj
        if isinstance(obj, Table):
            known = ", ".join(sorted(obj)) or "nothing"
            return f"{obj._table_label} has no '{self._undefined_name}' (it has: {known})"
        message: str = super()._undefined_message
        return message


_env = SandboxedEnvironment(
    undefined=_Undefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def is_template(text: str) -> bool:
    """Whether `text` has Jinja2 syntax in it (else it renders to itself)."""
    return "{{" in text or "{%" in text or "{#" in text


def render(text: str, context: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    return _compiled(text).render(context)


@functools.lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    """A template compiled once: a lab's texts are the same for every variant and every
    instance of it (a class graded at once renders each of them once per student). A compiled
    template keeps no state of a rendering; a syntax error is raised each time, not kept."""
    return _env.from_string(text)


def problem(text: str, context: dict[str, Any]) -> str | None:
    """Why `text` does not render with `context`, or None when it does."""
    try:
        render(text, context)
    except Exception as exc:  # a template can raise anything (e.g. 1/0); report, do not crash
        return describe(exc)
    return None


def describe(exc: Exception) -> str:
    """What went wrong in a template, for a person."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template error on its line {exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"template uses something undefined: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"template not allowed: {exc}"
    return f"template fails: {type(exc).__name__}: {exc}"
