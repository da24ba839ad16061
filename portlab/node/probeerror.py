"""What portlab-probe says when it could not observe at all: state probe-error, exit 3."""

from __future__ import annotations

import errno

PROBE_ERROR = 3  # the exit code when the probe could not do its work (state probe-error)


class CannotProbe(Exception):
    """This node could not send (or listen): a problem of the probe, not a network verdict."""

    def __init__(self, exc: OSError | str, cause: OSError | None = None, **where: str) -> None:
        super().__init__(str(exc))
        self.fields: dict = {"state": "probe-error", "error": str(exc), **where}
        cause = cause or (exc if isinstance(exc, OSError) else None)
        if cause is not None and cause.errno:
            self.fields["errno"] = errno.errorcode.get(cause.errno, str(cause.errno))
