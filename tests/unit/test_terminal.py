"""What a learner sees at the terminal: colour on a TTY (PASS and FAIL styled, never under
NO_COLOR, a dumb terminal, or into a pipe: no-color.org), a "did you mean" for a mistyped
lab, and `down` naming what it removed."""

from __future__ import annotations

import io

import pytest

from portlab.cli import common
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import CheckResult, Report
from portlab.views import report as view


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("tty", "env", "styled"), [
    (True, {}, True),
    (True, {"NO_COLOR": "1"}, False),
    (True, {"TERM": "dumb"}, False),
    (False, {}, False),
])
def test_colour_follows_the_terminal_and_no_color(
        monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], styled: bool) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdout", Tty() if tty else io.StringIO())
    assert common.color() is styled


def test_pass_and_fail_carry_colour_when_styled() -> None:
    probe = ProbeResult(Outcome.FAIL, "a ping", "a (10.0.0.1)", "b = 10.0.0.2:80", "nothing")
    report = Report("lab", "lab", [
        CheckResult("one", "the first", "", Outcome.PASS, [], "", 0.1),
        CheckResult("two", "the second", "", Outcome.FAIL, [probe], "", 0.1)])
    styled = view.terminal(report, color=True)
    plain = view.terminal(report, color=False)
    assert "\x1b[" in styled and "\x1b[" not in plain
    assert "PASS" in plain and "FAIL" in plain


def test_a_mistyped_lab_gets_a_did_you_mean() -> None:
    from portlab.errors import UsageError
    from portlab.model import catalog

    with pytest.raises(UsageError, match="Did you mean 'forwarding'"):
        catalog.find("fowarding")
    with pytest.raises(UsageError) as err:
        catalog.find("zzzzzz")
    assert "Did you mean" not in err.value.message


def test_down_says_what_it_removed_by_name() -> None:
    from portlab.backend.base import Removed
    from portlab.views.lifecycle import down_summary

    assert down_summary(None, 0.1) == down_summary(Removed(), 0.1) == \
        "Nothing to remove: no portlab lab is up."
    one = down_summary(Removed(4, 2, {"forwarding": "forwarding"}), 1.25)
    assert one == "Removed lab 'forwarding': 4 containers and 2 networks in 1.2s."
    two = down_summary(Removed(5, 3, {"a": "nat", "b": "ports"}), 2.0)
    assert two.startswith("Removed lab 'nat' (instance a), lab 'ports' (instance b): 5 ")


def test_got_says_each_thing_once_and_never_contradicts_itself() -> None:
    from portlab.probes.common import describe_state

    silent = describe_state({"state": "error",
                             "error": "not a Minecraft status answer: timed out"})
    assert silent.startswith("the connection was accepted, but nothing this probe understands")
    assert "something answered" not in silent and "[" not in silent
    odd = describe_state({"state": "error", "error": "not an HTTP answer: bad status line"})
    assert odd == ("something answered, but not what this probe speaks [not an HTTP answer: "
                   "bad status line]")
