"""Names portlab gives things: the scope, instance names, Compose project names.

Kept free of heavy imports (no Docker SDK, no Jinja2), so the CLI can work out
the project of a `portlab up` and start Compose before it loads the rest.
"""

from __future__ import annotations

import os
import re

from portlab.errors import UsageError, printable

SCOPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def scope() -> str:
    """The scope portlab works in: $PORTLAB_SCOPE, or "default".

    Every object carries its scope, and listing, `down --all` and `prune`
    see only their own scope, so CI jobs (or test sessions) that share one
    Docker daemon never touch each other's labs.
    """
    value = os.environ.get("PORTLAB_SCOPE", "") or "default"
    if not SCOPE_NAME.fullmatch(value):
        raise UsageError(f"PORTLAB_SCOPE='{printable(value)}' is not valid",
                         hint="use 1-20 lowercase letters, digits and '-'")
    return value


def check_instance_name(name: str) -> str:
    if not INSTANCE_NAME.fullmatch(name):
        raise UsageError(f"'{printable(name)}' is not a valid instance name",
                         hint="use 1-40 lowercase letters, digits and '-', starting with a "
                              "letter or digit")
    return name


def project_name(instance: str) -> str:
    """The Compose project of an instance (valid for v1 and v2), unique per scope."""
    current = scope()
    return f"portlab-{instance}" if current == "default" else f"portlab-{current}-{instance}"
