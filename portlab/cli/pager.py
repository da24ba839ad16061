"""The pager: output longer than the screen goes through it, on a person's terminal, as git
does. The one program portlab runs outside the backend besides the doctor's host readers:
`less` (or $PORTLAB_PAGER, $PAGER), never the engine."""

from __future__ import annotations

import os
import subprocess


def paged(pager: str, text: str) -> bool:
    """Show `text` through the pager command; False if it could not be started."""
    env = {**os.environ}
    env.setdefault("LESS", "FRX")  # quit if one screen, keep colours, leave it on screen
    try:
        proc = subprocess.Popen(pager, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        return False
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode() + b"\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the reader quit early: what they did not read is not needed
    proc.wait()
    return proc.returncode != 127  # the shell's "not found": print it plainly
