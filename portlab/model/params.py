"""A lab's params: named values its templates use, and other values for them (variants).

A lab file names its params with their values (`params: {game_port: 25565}`).
Loaded with overrides (`--param game_port=30000`, or a per-student variant),
each override must name a param the lab has and have the param's own type
(a number stays a number); the lab is then loaded afresh with those values,
so every template and every number template sees them, and each number is
validated again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from portlab.errors import UsageError, printable
from portlab.model.reader import Reader, kind
from portlab.model.types import ParamValue

PARAM_NAME = re.compile(r"[a-z_][a-z0-9_]*")
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


def read(r: Reader, value: Any) -> dict[str, ParamValue]:
    """The `params:` section of a lab file, validated."""
    params = value or {}
    if not isinstance(params, dict):
        raise r.error(("params",), "expected a mapping of parameter names to values")
    for key, item in params.items():
        if not isinstance(key, str) or not PARAM_NAME.fullmatch(key):
            raise r.error(("params", key), "parameter names use lowercase letters, digits and _")
        if not isinstance(item, (str, int, float, bool)):
            raise r.error(("params", key), f"expected text or a number, got {kind(item)}")
    return dict(params)


def apply(lab: str, defaults: Mapping[str, ParamValue], overrides: Mapping[str, Any], *,
          strict: bool = True) -> dict[str, ParamValue]:
    """The lab's params with `overrides` applied, each converted to its param's type. With
    strict=False an override of a param the lab no longer has is left out (a running
    instance's params, after its lab file changed)."""
    out = dict(defaults)
    for name, value in overrides.items():
        if name not in defaults:
            if not strict:
                continue
            known = ", ".join(sorted(defaults)) or "none"
            raise UsageError(f"lab '{lab}' has no param '{printable(str(name))}'. Its params: "
                             f"{known}", hint=f"`portlab show {lab}` tells what each is for")
        out[name] = coerce(lab, name, defaults[name], value)
    return out


def coerce(lab: str, name: str, default: ParamValue, value: Any) -> ParamValue:
    """`value` as the type of the param's own value (text from a command line included)."""
    text = str(value).strip()
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        what = "true or false"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        what = "a whole number"
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(text)
        except ValueError:
            what = "a number"
    else:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        what = "text"
    raise UsageError(f"param '{name}' of lab '{lab}' is {what} (the lab's own value is "
                     f"{default!r}); '{printable(text)}' is not")


def assignments(items: Iterable[str]) -> dict[str, str]:
    """NAME=VALUE pairs from a command line (`--param game_port=30000`)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not PARAM_NAME.fullmatch(name.strip()):
            raise UsageError(f"'{printable(item)}' is not NAME=VALUE",
                             hint="for example --param game_port=30000")
        out[name.strip()] = value
    return out
