"""portlab-probe --save: the JSON answer in a file too, and old answer files swept."""

from __future__ import annotations

import os
import time

ANSWER_MAX_AGE = 600  # seconds an answer file is kept for a late reader


def save(path: str, text: str) -> None:
    """The answer in a file too: Docker sometimes loses the output of a short `docker exec`
    (moby/moby#27289, docker/docker-py#2042), and portlab then reads it from here."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        fh.write(text + "\n")
    os.replace(path + ".tmp", path)


def sweep(folder: str) -> None:
    """Remove answer files old enough that nobody will read them."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        path = os.path.join(folder, name)
        try:
            if now - os.stat(path).st_mtime > ANSWER_MAX_AGE:
                os.unlink(path)
        except OSError:
            pass
