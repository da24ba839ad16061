"""Screens as a person sees them: portlab run in a pseudo-terminal of 80x24 and 100x30.

No line is wider than the terminal, no inline command is split across lines, long output
goes through the pager (and short output does not), and a pipe gets the text as it is.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from portlab.views.screen import fit

ROOT = Path(__file__).resolve().parents[2]
STYLE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(args: list[str], cols: int, rows: int, module: str = "portlab",
                **env: str) -> tuple[int, list[str]]:
    """`portlab ARGS` in a pseudo-terminal of cols x rows: its exit code and its lines."""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    environment = {**os.environ, "PORTLAB_PAGER": "cat", "TERM": "xterm", **env}
    environment.pop("COLUMNS", None)
    environment.pop("LINES", None)
    proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=sub, stdout=sub,
                            stderr=sub, env=environment, cwd=ROOT, close_fds=True)
    os.close(sub)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side closed: the program ended
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    code = proc.wait(timeout=60)
    text = out.decode("utf-8", "replace").replace("\r\n", "\n")
    return code, text.split("\n")


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (100, 30)])
@pytest.mark.parametrize("args", [["list"], ["show", "forwarding"], ["show", "ports"],
                                  ["up", "fowarding"], ["--help"]])
def test_every_line_fits_and_no_command_is_split(args: list[str], cols: int, rows: int) -> None:
    code, lines = on_terminal(args, cols, rows, NO_COLOR="1")
    assert code in (0, 2), lines
    assert len(lines) > 3
    plain = [STYLE.sub("", line) for line in lines]
    for line in plain:
        assert len(line) <= cols, (len(line), line)
    # a command too long for a line goes on over the next ones, each but the last ending in
    # " \\" (as the shell reads it); otherwise inline code opens and closes on one line
    joined = "\n".join(plain).replace(" \\\n", " ").split("\n")
    for line in joined:
        assert line.count("`") % 2 == 0, line


def test_long_output_goes_through_the_pager_and_short_output_does_not(tmp_path: Path) -> None:
    paged = tmp_path / "paged"
    pager = f"cat > {paged}"
    code, lines = on_terminal(["show", "forwarding"], 80, 24, PORTLAB_PAGER=pager)
    assert code == 0 and paged.read_text().count("\n") > 24  # the brief went to the pager
    paged.unlink()
    code, lines = on_terminal(["next"], 80, 24, PORTLAB_PAGER=pager)
    assert code == 0 and not paged.exists()  # one screen: printed at once
    code, lines = on_terminal(["--no-pager", "show", "forwarding"], 80, 24,
                              PORTLAB_PAGER=pager)
    assert code == 0 and not paged.exists() and len(lines) > 24


def test_a_pipe_gets_the_text_as_it_is() -> None:
    proc = subprocess.run([sys.executable, "-m", "portlab", "list"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert max(len(line) for line in proc.stdout.splitlines()) > 100  # not wrapped


def test_fit_hangs_continuations_under_the_text_and_keeps_tables() -> None:
    row = ("  FAIL  only-game-port         Only port 25565 is forwarded, to the game; the "
           "photo library stays private")
    assert fit(row, 80).split("\n") == [
        "  FAIL  only-game-port         Only port 25565 is forwarded, to the game; the",
        "                               photo library stays private"]
    hint = ("        hint:  On the router: `iptables -t nat -A PREROUTING -i wan -p tcp "
            "--dport 25565 -j DNAT --to-destination 10.0.0.10` and check again")
    lines = fit(hint, 80).split("\n")
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("               `iptables") and lines[1].endswith(" \\")
    assert fit("short", 80) == "short"


GOLDEN = Path(__file__).parent / "golden"
SCREENS = {  # name -> (module, args): what a learner types, as this test runs it
    "list": ("portlab", ["list"]),
    "show-forwarding": ("portlab", ["show", "forwarding"]),
    "error-unknown-lab": ("portlab", ["up", "fowarding"]),
    "check-failing": ("tests.unit.screenlab", ["untouched", "check"]),
    "check-passing": ("tests.unit.screenlab", ["solved", "check"]),
}
TIMES = re.compile(r"in \d+\.\ds\b")


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (100, 30)])
@pytest.mark.parametrize("name", sorted(SCREENS))
def test_screens_are_as_a_person_saw_them(name: str, cols: int, rows: int,
                                         tmp_path: Path) -> None:
    """Golden screens: what `list`, `show`, `check` (failing and passing) and an error look like
    in a terminal, with NO_COLOR (colour is tested apart). PORTLAB_GOLDEN=write renews them
    after a change that was read on a real screen."""
    module, args = SCREENS[name]
    code, lines = on_terminal(args, cols, rows, module, NO_COLOR="1",
                              XDG_STATE_HOME=str(tmp_path))
    text = TIMES.sub("in N.Ns", "\n".join(line.rstrip() for line in lines).rstrip() + "\n")
    golden = GOLDEN / f"{name}-{cols}x{rows}.txt"
    if os.environ.get("PORTLAB_GOLDEN") == "write":
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden.name} differs: see it with the test's output"
    assert all(len(line) <= cols for line in lines)


def test_pass_and_fail_carry_colour_on_a_terminal_and_none_under_no_color(
        tmp_path: Path) -> None:
    module, args = SCREENS["check-failing"]
    _, lines = on_terminal(args, 80, 24, module, NO_COLOR="", XDG_STATE_HOME=str(tmp_path))
    text = "\n".join(lines)
    assert "\x1b[31m\x1b[1mFAIL" in text and "\x1b[32m\x1b[1mPASS" in text
    _, lines = on_terminal(args, 80, 24, module, NO_COLOR="1", XDG_STATE_HOME=str(tmp_path))
    assert "\x1b[" not in "\n".join(lines)
