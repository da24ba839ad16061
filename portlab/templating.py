"""Jinja2 for lab texts: sandboxed, strict, one environment.

Lab files come from trainers and students, so their templates run in Jinja2's
sandbox (no attribute access to Python internals) and any undefined name is
an error instead of an empty string.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def render(text: str, context: dict[str, Any]) -> str:
    if "{" not in text:
        return text
    return _env.from_string(text).render(context)


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
