"""`portlab ARGS` with the forwarding lab answered by a table (tests/unit/test_seam.py), not
Docker: for screens of `check` in a pseudo-terminal. `python -m tests.unit.screenlab
solved|untouched ARGS...`."""

from __future__ import annotations

import random
import sys

from portlab import backend
from portlab.cli import main
from tests.unit.fakes import nonce_of
from tests.unit.test_seam import forwarding_table


def run(state: str, args: list[str]) -> None:
    table = forwarding_table()
    if state == "untouched":  # nothing forwards the game port: the router refuses it
        table.answers[("friend", "minecraft")] = lambda argv: {"state": "closed",
                                                               "nonce": nonce_of(argv)}
    backend._backend = table  # noqa: SLF001 (the seam's own switch, as the tests use it)
    # the fresh addresses probes send from, picked the same way on every run: a screen to compare
    random.SystemRandom = lambda: random.Random(7)  # type: ignore[assignment,misc]
    sys.argv = ["portlab", *args]
    main()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
