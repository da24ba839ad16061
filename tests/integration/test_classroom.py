"""`portlab classroom serve` on real containers, in a real headless Chromium: a student solves
the lab in the page's terminal and sees PASS, the dashboard shows it, Reset gives a fresh lab,
another seat's token reaches nothing of the first, and stopping (Ctrl-C, or SIGKILL and the
next serve) leaves nothing behind."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Callable

import aiohttp
import pytest

from portlab import core, runtime
from tests.browser import chromium
from tests.integration.helpers import Running
from tests.integration.test_trainer import wait_until

LAB = "forwarding"


def links(run: Running) -> tuple[str, list[str]]:
    run.wait_for("the classroom's links", lambda: "seat  2" in run.stdout)
    trainer = re.search(r"trainer: (http://127\.0\.0\.1:\d+/t/\S+)", run.stdout)
    seats = re.findall(r"seat +\d+ +(http://127\.0\.0\.1:\d+/s/\S+)", run.stdout)
    assert trainer and len(seats) == 2, run.stdout
    return trainer.group(1), seats


def seats_left() -> list[str]:
    return sorted(n for n in runtime.instances() if n.startswith("class-"))


def type_into_terminal(browser: object, line: str) -> None:
    box = browser.find_element("css selector",  # type: ignore[attr-defined]
                               ".terms > div:not([hidden]) .xterm-helper-textarea")
    box.send_keys(line + "\n")


def refused(url: str, origin: str) -> list[int]:
    """The HTTP statuses of a websocket and a GET at `url` (a forged path)."""
    async def main() -> list[int]:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url.replace("http://", "ws://"),
                                              headers={"Origin": origin}):
                    first = 101
            except aiohttp.WSServerHandshakeError as exc:
                first = exc.status
            async with session.get(url) as answer:
                return [first, answer.status]
    return asyncio.run(main())


def test_a_class_in_the_browser(node_image: str, started: Callable[..., Running]) -> None:
    run = started("classroom", "serve", LAB, "--seats", "2", "--port", "0")
    try:
        _use_the_class(run)
    finally:
        if run.proc.poll() is None:
            run.stop(signal.SIGINT)
    assert run.proc.returncode == 0, run.stderr
    assert "Removed 1 lab" in run.stdout
    assert seats_left() == []


def _use_the_class(run: Running) -> None:
    trainer, (first, second) = links(run)
    origin = first.split("/s/")[0]
    with chromium() as browser:
        browser.get(first)
        wait_until("seat 1's lab to be ready", lambda: browser.find_element(
            "id", "state").text.startswith("ready"))
        wait_until("the terminal", lambda: browser.find_elements(
            "css selector", ".terms .xterm-helper-textarea"))
        type_into_terminal(browser, "echo typed-$((1+1)) early")  # before the prompt: kept
        wait_until("the shell's prompt", lambda: "root@router" in browser.find_element(
            "css selector", ".terms .xterm-rows").text)
        wait_until("what was typed early", lambda: "typed-2 early" in browser.find_element(
            "css selector", ".terms .xterm-rows").text)
        bound, _ = core.binding(LAB, instance="class-01")
        pc, port = bound.addresses["gamer-pc.lan"], bound.lab.params["game_port"]
        type_into_terminal(browser, f"iptables -t nat -A PREROUTING -i wan -p tcp --dport {port}"
                                    f" -j DNAT --to-destination {pc}")
        type_into_terminal(browser, f"iptables -A FORWARD -i wan -o lan -p tcp -d {pc} "
                                    f"--dport {port} -j ACCEPT; echo done-$((40+2))")
        wait_until("the commands to run", lambda: "done-42" in browser.find_element(
            "css selector", ".terms .xterm-rows").text)
        browser.find_element("id", "check").click()
        shown: list[str] = []

        def verdict() -> bool:
            shown.append(browser.find_element("id", "result").text)
            return "4 of 4 checks passed" in shown[-1]

        try:
            wait_until("the Check's verdict", verdict)
        except pytest.fail.Exception:
            pytest.fail(f"the page says: {shown[-1] if shown else '(nothing)'}")
        assert "PASS  reach" in shown[-1]
        # the diagram is live: the Check's packets lit the router's links as they crossed
        wait_until("the router's wan link to light", lambda: browser.execute_script(
            "var g = document.getElementById('link-router-wan');"
            "return g && Number(g.getAttribute('data-packets') || 0) > 0;"))
        assert browser.find_element("id", "conn").text == "connected"

        # the dashboard shows it
        browser.get(trainer)
        row = wait_until("seat 1 on the dashboard", lambda: [
            r.text for r in browser.find_elements("css selector", "#seats tr[data-seat='1']")
            if "4 of 4" in r.text])
        assert "seat 1" in row[0]

        # seat 2's token, and forged ones, reach nothing of seat 1's
        token_two = second.rsplit("/", 1)[1]
        token_one = first.rsplit("/", 1)[1]
        forged = token_one[:-1] + ("A" if token_one[-1] != "A" else "B")
        for path in (f"/s/{forged}/term/router", f"/t/{token_two}/watch/1/router",
                     f"/s/{token_two}/term/..%2F..%2Fs%2F{token_one}%2Fterm%2Frouter",
                     f"/s/{token_two}/term/friend"):
            assert refused(origin + path, origin) == [404, 404], path
        assert refused(f"{first}/term/router", "http://evil.example")[0] == 403

        # Reset gives a fresh lab: the rules typed before are gone
        browser.get(first)
        wait_until("seat 1 ready again", lambda: browser.find_element(
            "id", "state").text.startswith("ready"))
        token_before = runtime.find(None, "class-01").token
        browser.find_element("id", "reset").click()
        browser.switch_to.alert.accept()
        wait_until("the reset to start", lambda: not browser.find_element(
            "id", "state").text.startswith("ready"))
        wait_until("the fresh lab", lambda: browser.find_element(
            "id", "state").text.startswith("ready"))
        fresh = runtime.find(None, "class-01")
        assert fresh.token != token_before
        rules = fresh.exec("router", ["iptables", "-t", "nat", "-S", "PREROUTING"]).stdout
        assert "DNAT" not in rules


def test_a_classroom_killed_outright_is_cleaned_up_by_the_next(
        node_image: str, started: Callable[..., Running]) -> None:
    run = started("classroom", "serve", LAB, "--seats", "2", "--port", "0")
    _, (first, _) = links(run)

    async def visit() -> None:
        async with aiohttp.ClientSession() as session:
            await (await session.get(first)).text()
            for _ in range(600):
                if (await (await session.get(f"{first}/state")).json())["state"] == "ready":
                    return
                await asyncio.sleep(0.2)
            pytest.fail("seat 1 never became ready")

    asyncio.run(visit())
    assert run.stop(signal.SIGKILL) == -9
    assert seats_left() == ["class-01"]  # what a SIGKILL leaves
    again = started("classroom", "serve", LAB, "--seats", "1", "--port", "0")
    again.wait_for("the leftover removed", lambda: again.said("removing class-01"))
    links_again = again
    links_again.wait_for("the links", lambda: "seat  1" in again.stdout)
    assert seats_left() == []
    assert again.stop(signal.SIGINT) == 0
    assert "Removed 0 labs" in again.stdout
