"""The live page (trace and demo) and the classroom's student page in a real headless Chromium,
at a projector's 1280x720 and 1920x1080: they fill the window, their type grows with it, and
no text is cut off (the NAT note beside the router, long packet lines, the brief) or needs
scrolling sideways. The live page gets its events from its real server; the student page
comes from the classroom's real server, its lab faked (tests/unit/test_classroom_web.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from selenium.webdriver.support.ui import WebDriverWait

from portlab import core
from portlab.model.context import Binding
from portlab.trace.events import Connection, Flow, Packet
from portlab.views import brief, html
from portlab.web import app as web_app
from portlab.web import xterm
from portlab.web.classroom import Classroom, Seat
from portlab.web.serve import LiveServer
from tests.browser import chromium
from tests.unit.test_classroom_web import FakeOps

SIZES = [(1280, 720), (1920, 1080)]
SMALLEST_TEXT = {1280: 12, 1920: 16}  # px: the smallest type a projector's room reads

# The friend's connection to the game, forwarded by the router to the PC: the NAT note beside
# the router reads "198.51.100.1:25565 → 10.0.0.10:25565".
FORWARD = Connection(time=1.0, node="router", event="new", proto="tcp",
                     original=Flow("198.51.100.10", "198.51.100.1", 54668, 25565),
                     reply=Flow("10.0.0.10", "198.51.100.10", 25565, 54668), state="SYN_SENT")
KNOCK = Packet(time=1.0, node="router", iface="wan", direction="in", proto="tcp",
               flow=FORWARD.original, flags="S", length=0, link="router.wan",
               what="opens a connection (SYN) " + "with-a-long-word-that-never-breaks-" * 4)

# For every element with text, each word must lie inside every ancestor that clips or scrolls
# (sideways always; up and down only where it clips, not where it scrolls), inside the
# window's width, and an SVG's text inside its picture; no element may scroll sideways but
# xterm's own viewport. Also measured: how much of the window the main content spans, how
# much of its panel the diagram's drawing fills, and the type's sizes.
FIT = r"""
var main = arguments[0];
var vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
var problems = [], reported = new Set(), smallest = {px: 1e9, where: ""};

function name(el) {
  var cls = (el.getAttribute("class") || "").trim();
  return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (cls ? "." + cls.split(/\s+/).join(".") : "");
}
function inside(r, a, across, down) {
  return (!across || (r.left >= a.left - 1 && r.right <= a.right + 1)) &&
         (!down || (r.top >= a.top - 1 && r.bottom <= a.bottom + 1));
}
// what cuts off the box r of el's text: an ancestor's name, "the window", or null
function cutBy(el, r) {
  if (r.width === 0 && r.height === 0) { return null; }
  if (r.left < -1 || r.right > vw + 1) { return "the window"; }
  var box = {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  for (var a = el.parentElement; a; a = a.parentElement) {
    var s = getComputedStyle(a), ar = a.getBoundingClientRect();
    var svg = a.tagName.toLowerCase() === "svg";
    var across = svg || s.overflowX !== "visible";
    var down = svg || s.overflowY === "hidden" || s.overflowY === "clip";
    if ((across || down) && !inside(box, ar, across, down)) { return name(a); }
    if (s.overflowY === "auto" || s.overflowY === "scroll") {
      box.top = ar.top; box.bottom = ar.bottom;  // scrolled into view there when read
    }
  }
  return null;
}
function report(el, words, by) {
  if (by && !reported.has(el)) {
    reported.add(el);
    problems.push(name(el) + " '" + words + "' is cut off by " + by);
  }
}

var walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), node, word;
while ((node = walk.nextNode())) {
  var el = node.parentElement, style = getComputedStyle(el);
  if (el.closest("script, style, title") || style.visibility !== "visible" ||
      !el.getClientRects().length) { continue; }
  var words = /\S+/g;
  while ((word = words.exec(node.data))) {
    var range = document.createRange();
    range.setStart(node, word.index);
    range.setEnd(node, word.index + word[0].length);
    report(el, node.data.trim().slice(0, 80), cutBy(el, range.getBoundingClientRect()));
  }
  var px = parseFloat(style.fontSize);
  if (!el.closest("svg") && node.data.trim() && px < smallest.px) {
    smallest = {px: px, where: name(el) + " '" + node.data.trim().slice(0, 40) + "'"};
  }
}
document.querySelectorAll("svg text").forEach(function (el) {
  report(el, el.textContent.trim(), cutBy(el, el.getBoundingClientRect()));
});
document.querySelectorAll("*").forEach(function (el) {
  var s = getComputedStyle(el);
  if (!el.closest(".xterm-viewport") && (s.overflowX === "auto" || s.overflowX === "scroll")
      && el.scrollWidth > el.clientWidth + 1) {
    problems.push(name(el) + " scrolls sideways (" + el.scrollWidth + " > " +
                  el.clientWidth + " px)");
  }
});
if (document.scrollingElement.scrollWidth > vw + 1) { problems.push("the page scrolls sideways"); }

var left = vw, right = 0, bottom = 0;
document.querySelectorAll(main).forEach(function (el) {
  var r = el.getBoundingClientRect();
  left = Math.min(left, r.left); right = Math.max(right, r.right);
  bottom = Math.max(bottom, r.bottom);
});
var drawing = document.querySelector(".panel svg > g").getBoundingClientRect();
var panel = document.querySelector(".panel svg").closest(".panel").getBoundingClientRect();
var term = document.querySelector(".xterm-rows");
return {problems: problems, width: (right - left) / vw, bottom: bottom / vh,
        tall: document.scrollingElement.scrollHeight / vh,
        drawing: Math.max(drawing.width / panel.width, drawing.height / panel.height),
        font: parseFloat(getComputedStyle(document.body).fontSize), smallest: smallest,
        terminal: term ? parseFloat(getComputedStyle(term).fontSize) : null};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _viewport(driver: Any, width: int, height: int) -> None:
    """Size the window so that the page itself gets width x height (a full-screen projector);
    the window's frame around the page differs from one platform to another."""
    for _ in range(20):
        inner = driver.execute_script("return [innerWidth, innerHeight]")
        if inner == [width, height]:
            return
        outer = driver.get_window_size()
        driver.set_window_size(outer["width"] + width - inner[0],
                               outer["height"] + height - inner[1])
        time.sleep(0.1)  # the page learns its new size a moment later
    pytest.fail(f"the page is {inner[0]}x{inner[1]}, not {width}x{height}")


def _wait(driver: Any, what: str, script: str) -> Any:
    return WebDriverWait(driver, 15).until(lambda d: d.execute_script(script),
                                           message=f"waited in vain for {what}")


def _assert_fits(driver: Any, main: str, size: tuple[int, int]) -> dict[str, Any]:
    got: dict[str, Any] = driver.execute_script(FIT, main)
    at = f"at {size[0]}x{size[1]}"
    assert not got["problems"], f"{at}:\n" + "\n".join(got["problems"])
    assert got["width"] >= 0.9, f"{at} the page's content spans {got['width']:.0%} of its width"
    assert got["bottom"] >= 0.9 and got["tall"] <= 1.0, \
        f"{at} the content ends at {got['bottom']:.0%} of the window's height, the page is " \
        f"{got['tall']:.0%} of it"
    assert got["drawing"] >= 0.85, f"{at} the diagram fills {got['drawing']:.0%} of its panel"
    smallest = got["smallest"]
    assert smallest["px"] >= SMALLEST_TEXT[size[0]], \
        f"{at} {smallest['where']} is {smallest['px']} px: too small for a projector"
    return got


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", ["trace", "demo"])
def test_the_live_page_fills_the_window_and_cuts_no_text(browser: Any, mode: str,
                                                         size: tuple[int, int]) -> None:
    lab = core.get_lab("forwarding")
    bound = Binding.preview(lab)
    with LiveServer(html.live_page(bound, mode=mode, traced=["router"]),
                    ("127.0.0.1", 0)) as server:
        _viewport(browser, *size)
        browser.get(server.url)
        _wait(browser, "the page to connect",
              "return document.getElementById('conn').textContent === 'connected'")
        if mode == "demo":
            words = core.demo_texts(bound, 4)  # the forwarded knock: the longest step
            server.hub.publish("step", {
                "index": 4, "total": len(lab.demo), **words, "command": words["run"],
                "node": "friend", "done": True,
                "output": "status: " + "a-long-answer-without-spaces-" * 8 + "\n" * 3,
                "checks": {"checks": [{"status": "fail", "title": c.title}
                                      for c in lab.checks]}})
        server.hub.publish("connection", FORWARD.to_json())
        for _ in range(12):
            server.hub.publish("packet", KNOCK.to_json())
        _wait(browser, "the NAT note and the packets",
              "return document.querySelector('#node-router text.natnote') && "
              "document.querySelectorAll('#packets .pkt').length === 13")
        if mode == "demo":
            _wait(browser, "the step", "return document.body.dataset.step === '4'")
        note = browser.find_element("css selector", "#node-router text.natnote").text
        assert note.startswith("198.51.100.1:25565 →") and note.endswith("10.0.0.10:25565")
        _assert_fits(browser, ".live > *", size)


# Counts the page's additions to the packets panel: each is a layout the browser must do.
WATCH_PACKETS = """
window.added = 0;
new MutationObserver(function (records) {
  records.forEach(function (r) { if (r.addedNodes.length) { window.added += 1; } });
}).observe(document.getElementById('packets'), {childList: true});
"""


def test_the_live_page_draws_a_flood_of_events_in_batches(browser: Any) -> None:
    """A forwarding check sends the live page about 11,000 events in 3.5 s (the router's
    connections from the scan of its ports). Drawn one by one, they froze a loaded
    Chromium for minutes; the page must draw them together: few additions to the panel, the
    newest lines kept, every packet counted on its link."""
    bound = Binding.preview(core.get_lab("forwarding"))
    with LiveServer(html.live_page(bound, mode="trace", traced=["router"]),
                    ("127.0.0.1", 0)) as server:
        browser.get(server.url)
        _wait(browser, "the page to connect",
              "return document.getElementById('conn').textContent === 'connected'")
        browser.execute_script(WATCH_PACKETS)
        for n in range(10_000):
            server.hub.publish("connection", {**FORWARD.to_json(), "text": f"flow {n}"})
        for _ in range(500):
            server.hub.publish("packet", KNOCK.to_json())
        server.hub.publish("connection", {**FORWARD.to_json(), "text": "the last one"})
        _wait(browser, "the last event drawn",
              "var p = document.getElementById('packets');"
              "return p.lastChild && p.lastChild.textContent.endsWith('the last one')")
        lines = browser.execute_script("return document.querySelectorAll('#packets div').length")
        added = browser.execute_script("return window.added")
        counted = browser.find_element("id", "link-router-wan").get_attribute("data-packets")
    assert lines <= 200
    assert added < 500, f"the page added to its panel {added} times for 10,501 events"
    assert counted == "500"


class Pages:
    """The classroom's real pages for the forwarding lab; its brief and diagram those of a
    preview (no lab runs)."""

    def __init__(self) -> None:
        self.lab = core.get_lab("forwarding")
        self.nodes = core.workplaces(self.lab)

    def student(self, seat: Seat, *, tls: bool) -> str:
        return html.student_page(self.lab.title, seat=seat.label, nodes=self.nodes,
                                 csrf=seat.csrf, tls=tls)

    def brief(self, seat: Seat) -> tuple[str, str]:
        bound = Binding.preview(self.lab)
        return brief.show(bound, color=False, width=100), html.lab_picture(bound)


@contextmanager
def classroom(browser: Any) -> Iterator[str]:
    """A classroom of one seat served on loopback from a thread, its lab faked (ready at
    once): the seat's page, which the browser leaves at the end."""
    if not xterm.present():
        pytest.fail("xterm.js is missing: `python -m portlab.web.xterm` fetches it")
    ops = FakeOps()
    room = Classroom("forwarding", ops, seats=1, checks=["reach"], workers=1)
    server = TestServer(web_app.Server(room, pages=Pages(), terminal=ops.terminal).app(),
                        host="127.0.0.1")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(10)
        yield f"http://127.0.0.1:{server.port}/s/{room.seats[0].token}"
    finally:
        browser.get("about:blank")  # closes the page's terminal: the server can stop
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        room.close()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_student_page_fills_the_window_and_cuts_no_text(browser: Any,
                                                            size: tuple[int, int]) -> None:
    with classroom(browser) as url:
        _viewport(browser, *size)
        browser.get(url)
        _wait(browser, "the brief, the diagram and a terminal",
              "return document.getElementById('brief').textContent.indexOf('THE STORY') >= 0"
              " && document.querySelector('#diagram svg')"
              " && document.querySelector('.terms .xterm-rows')")
        got = _assert_fits(browser, ".work > *", size)
        assert got["terminal"] == round(got["font"]), \
            f"the terminal's type is {got['terminal']} px, the page's {got['font']} px"
