"""`portlab ARGS` with the forwarding lab answered by a table (tests/unit/test_seam.py), not
Docker: for screens of `check` in a pseudo-terminal. `python -m tests.unit.screenlab
solved|untouched ARGS...`."""

from __future__ import annotations

import random
import sys

from portlab import backend
from portlab.cli import main
from portlab.probes import common
from tests.unit.fakes import nonce_of
from tests.unit.test_seam import forwarding_table


class _Forgets(set[tuple[str, str]]):
    """Holds no address: every probe picks as if it were alone, the same one on every run."""

    def add(self, item: tuple[str, str]) -> None:
        pass


def run(state: str, args: list[str]) -> None:
    table = forwarding_table()
    if state == "untouched":  # nothing forwards the game port: the router refuses it
        table.answers[("friend", "minecraft")] = lambda argv: {"state": "closed",
                                                               "nonce": nonce_of(argv)}
    backend._backend = table  # noqa: SLF001 (the seam's own switch, as the tests use it)
    # the fresh addresses probes send from, picked the same way on every run: a screen to compare
    random.SystemRandom = lambda: random.Random(7)  # type: ignore[assignment,misc]
    common._HELD = _Forgets()  # noqa: SLF001 (and whichever probe is at it meanwhile)
    sys.argv = ["portlab", *args]
    main()


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2:])
