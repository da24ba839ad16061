"""Names portlab gives things: the scope, and instance names.

Kept free of heavy imports (no Docker SDK, no Jinja2), so the CLI can check
a name and start Compose before it loads the rest.
"""

from __future__ import annotations

import os
import pwd
import re

from portlab.errors import UsageError, printable

SCOPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
INSTANCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def scope() -> str:
    """The scope portlab works in: $PORTLAB_SCOPE, or one of the user's own.

    Every object carries its scope, and listing, `down --all` and `prune`
    see only their own scope. By default each user of a machine has a scope of
    their own (their login name), so on a classroom server with one Docker
    daemon nobody's `down --all` touches another user's labs; users who want
    to share labs set the same $PORTLAB_SCOPE. CI jobs and test sessions that
    share a daemon set one each.
    """
    value = os.environ.get("PORTLAB_SCOPE", "")
    if not value:
        return user_scope()
    if not SCOPE_NAME.fullmatch(value):
        raise UsageError(f"PORTLAB_SCOPE='{printable(value)}' is not valid",
                         hint="use 1-20 lowercase letters, digits and '-'")
    return value


def user_scope(uid: int | None = None) -> str:
    """The default scope of a user: their login name where it makes a valid scope, else
    `uid-N`."""
    uid = os.getuid() if uid is None else uid
    try:
        login = pwd.getpwuid(uid).pw_name
    except KeyError:
        login = ""
    name = re.sub(r"[^a-z0-9-]+", "-", login.lower()).strip("-")
    return name if SCOPE_NAME.fullmatch(name) else f"uid-{uid}"


def check_instance_name(name: str) -> str:
    if not INSTANCE_NAME.fullmatch(name):
        raise UsageError(f"'{printable(name)}' is not a valid instance name",
                         hint="use 1-40 lowercase letters, digits and '-', starting with a "
                              "letter or digit")
    return name
