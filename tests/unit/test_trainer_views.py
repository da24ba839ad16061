"""Pictures, pages and the live server, without Docker: the layout model, the Graphviz
diagram (SVG parses, PNG decodes), the HTML report, the live page and its event stream, and a
trace over stand-in streams."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from portlab import core
from portlab.backend.base import ExecResult, Stream
from portlab.cli.common import web_bind
from portlab.errors import UsageError
from portlab.model.context import Binding
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import CheckResult, Report
from portlab.trace.live import Trace
from portlab.views import html, layout, topology
from portlab.web.serve import LiveServer

LABS = [lab.name for lab in core.labs()]
SVG = "{http://www.w3.org/2000/svg}"


def bound(name: str) -> Binding:
    return Binding.preview(core.get_lab(name))


@pytest.mark.parametrize("name", LABS)
def test_the_layout_has_every_node_interface_and_the_learner(name: str) -> None:
    b = bound(name)
    lay = layout.of(b)
    assert {n.name for n in lay.nodes} == {n.name for n in b.lab.nodes}
    assert {lk.ref: lk.address for lk in lay.links} == b.addresses
    assert {n.name for n in lay.nodes if n.learner} == set(b.lab.solution)
    assert [n.name for n in lay.networks if n.internet] == [
        n.name for n in b.lab.networks if n.kind == "public" and not n.virtual]


def test_the_terminal_drawing_reads_the_same_layout() -> None:
    drawn = topology.draw(layout.of(bound("forwarding")))
    assert "the internet · 198.51.100.0/24 · public" in drawn
    assert "[gamer-pc]" in drawn and "lan 10.0.0.10" in drawn and "wan 198.51.100.1" in drawn


@pytest.mark.parametrize("name", LABS)
def test_the_svg_parses_and_holds_every_node_and_address(name: str, tmp_path: Path) -> None:
    b = bound(name)
    path = tmp_path / f"{name}.svg"
    assert core.diagram(name, path) == "svg"
    root = etree.parse(str(path)).getroot()
    assert root.tag == f"{SVG}svg"
    words = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for node in b.lab.nodes:
        assert node.name in words
        assert root.find(f".//{SVG}g[@id='node-{node.name}']") is not None
        for iface in node.interfaces:
            address = b.addresses[f"{node.name}.{iface.name}"]
            assert f"{iface.name} {address}" in words
            assert root.find(f".//{SVG}g[@id='link-{node.name}-{iface.name}']") is not None
    for net in b.lab.networks:
        assert str(b.subnets[net.name]) in words
    assert "you work here" in words
    if any(net.kind == "public" for net in b.lab.networks):
        assert "public: the internet" in words


def test_the_png_decodes(tmp_path: Path) -> None:
    path = tmp_path / "forwarding.PNG"
    assert core.diagram("forwarding", path, params={"game_port": 30000}) == "png"
    with Image.open(io.BytesIO(path.read_bytes())) as img:
        img.load()
        assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 300


def test_a_picture_name_without_a_known_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="end the file's name with .svg or .png"):
        core.diagram("forwarding", tmp_path / "net.gif")
    assert list(tmp_path.iterdir()) == []


def test_without_graphviz_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    with pytest.raises(UsageError) as info:
        core.diagram("forwarding", tmp_path / "net.svg")
    assert "apt-get install graphviz" in str(info.value)


def _report() -> Report:
    ok = ProbeResult(Outcome.PASS, "Minecraft status ping", "friend (198.51.100.10)",
                     "router.wan = 198.51.100.1:25565", "an answer from gamer-pc")
    bad = ProbeResult(Outcome.FAIL, "TCP connection attempt (SYN)", "friend (198.51.100.10)",
                      "router.wan = 198.51.100.1:8080", "it <b>answered</b>", why="open")
    return Report("forwarding", "forwarding", [
        CheckResult("reach", "The friend reaches the game", "forward", Outcome.PASS, [ok],
                    "the reach hint", 0.1),
        CheckResult("only-game-port", "Only one port", "keep-private", Outcome.FAIL, [bad],
                    "Forward one port, not all of them", 0.2)], 0.3)


def test_the_html_report_is_one_file_with_results_traffic_and_hints() -> None:
    page = html.check_report(_report(), bound("forwarding"))
    doc = etree.HTML(page)
    assert doc.xpath("//article[@id='check-reach']/@data-status") == ["pass"]
    assert doc.xpath("//article[@id='check-only-game-port']/@data-status") == ["fail"]
    assert "it <b>answered</b>" in "".join(doc.xpath("//dd[@class='got']/text()"))  # escaped
    assert "Forward one port, not all of them" in page
    assert doc.xpath("//*[@id='node-gamer-pc']")
    # self-contained: nothing to fetch
    assert not doc.xpath("//script[@src] | //link[@href] | //img[@src]")
    assert "http://" not in page.replace("http://www.w3.org", "")


def test_the_live_page_has_the_diagram_and_its_script_inline() -> None:
    page = html.live_page(bound("forwarding"), mode="demo", traced=["router"])
    doc = etree.HTML(page)
    assert doc.xpath("//*[@id='link-router-wan']") and doc.xpath("//button[@id='next']")
    assert 'new EventSource(url)' in page and 'follow("/events")' in page
    assert doc.xpath("//body/@data-mode") == ["demo"]  # what makes live.js follow /events
    assert not doc.xpath("//script[@src] | //link[@href]")


def _get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return bytes(answer.read())


def test_the_server_streams_events_and_takes_next_from_the_page() -> None:
    nexts = threading.Event()
    with LiveServer("<html>page</html>", ("127.0.0.1", 0)) as server:
        assert server.url.startswith("http://127.0.0.1:")
        server.hub.on_next = nexts.set
        assert _get(server.url) == b"<html>page</html>"
        server.hub.publish("step", {"index": 0, "title": "First"})
        got: list[str] = []
        answer = urllib.request.urlopen(server.url + "events", timeout=5)
        assert answer.headers["Content-Type"] == "text/event-stream"
        for raw in answer:
            got.append(raw.decode())
            if got[-1].startswith("data:") and '"title": "First"' in got[-1]:
                break  # a late page gets the step shown now
        server.hub.publish("packet", {"link": "router.wan"})
        for raw in answer:
            line = raw.decode()
            if line.startswith("data:"):
                assert json.loads(line[5:]) == {"link": "router.wan"}
                break
        answer.close()
        request = urllib.request.Request(server.url + "next", method="POST")
        with urllib.request.urlopen(request, timeout=5) as done:
            assert done.status == 204
        assert nexts.is_set()
        with pytest.raises(urllib.error.HTTPError):
            _get(server.url + "elsewhere")


def test_a_taken_port_is_a_clear_error() -> None:
    with LiveServer("x", ("127.0.0.1", 0)) as first:
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(UsageError, match="--port"):
            LiveServer("x", ("127.0.0.1", port))


def test_the_page_stays_on_loopback_unless_told_twice() -> None:
    assert web_bind("127.0.0.1", 8765, False) == ("127.0.0.1", 8765)
    assert web_bind("::1", 0, False) == ("::1", 0)
    with pytest.raises(UsageError, match="--allow-remote"):
        web_bind("0.0.0.0", 8765, False)
    assert web_bind("0.0.0.0", 8765, True) == ("0.0.0.0", 8765)
    with pytest.raises(UsageError, match="IP address"):
        web_bind("localhost.example", 8765, False)


# --- a trace over stand-in streams -------------------------------------------------------------

class FakeStream:
    def __init__(self, lines: list[str], stderr: str = "listening on any\n",
                 code: int | None = None) -> None:
        self.lines, self._stderr, self.code = lines, stderr, code
        self.stopped = threading.Event()

    def __iter__(self) -> Iterator[str]:
        yield from self.lines
        if self.code is None:
            self.stopped.wait(10)  # a live tool: runs until stopped

    def stop(self) -> None:
        self.stopped.set()

    @property
    def exit_code(self) -> int | None:
        return self.code

    @property
    def stderr(self) -> str:
        return self._stderr

    def __enter__(self) -> FakeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeNodes:
    def __init__(self, streams: dict[tuple[str, str], FakeStream]) -> None:
        self.streams = streams
        self.started: list[tuple[str, list[str]]] = []

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        raise AssertionError("a trace only streams")

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        self.started.append((node, list(argv)))
        return self.streams[(node, argv[0])]


DATA = Path(__file__).parent / "data"


def test_a_trace_merges_tcpdump_and_conntrack_and_stops_both() -> None:
    lab = core.get_lab("forwarding")
    td = FakeStream((DATA / "tcpdump-forwarding.txt").read_text().splitlines())
    ct = FakeStream((DATA / "conntrack.txt").read_text().splitlines()[:1], stderr="")
    nodes = FakeNodes({("router", "tcpdump"): td, ("router", "conntrack"): ct})
    with Trace(nodes, lab, []) as trace:  # no node named: the one that forwards
        assert trace.names == ["router"]
        got = trace.drain(1.0)
    assert [n for n, _ in nodes.started] == ["router", "router"]
    assert nodes.started[0][1][-1] == "ip"  # the default filter
    assert td.stopped.is_set() and ct.stopped.is_set()
    kinds = {(e.type, getattr(e, "nat", "")) for e in got}
    assert ("connection", "dnat") in kinds and ("packet", "") in kinds
    # (tcpdump's filter, "ip", leaves IPv6 out; the fake stream does not, so it holds 2 more)
    assert sum(1 for e in got if e.type == "packet") == 12


def test_a_filter_tcpdump_refuses_is_a_usage_error_and_nothing_keeps_running() -> None:
    lab = core.get_lab("forwarding")
    td = FakeStream([], stderr="tcpdump: syntax error in filter expression\n", code=1)
    nodes = FakeNodes({("gamer-pc", "tcpdump"): td})
    with pytest.raises(UsageError, match="does not understand the filter 'tcp prot 1'"):
        Trace(nodes, lab, ["gamer-pc"], expr="tcp prot 1").start()
    assert td.stopped.is_set()


def test_an_unknown_node_is_named() -> None:
    with pytest.raises(UsageError, match="no node called 'routr'"):
        Trace(FakeNodes({}), core.get_lab("forwarding"), ["routr"])


def test_a_node_image_without_the_tools_says_to_start_the_lab_again() -> None:
    from portlab.errors import RuntimeProblem

    lab = core.get_lab("forwarding")
    td = FakeStream(["listening on any"], stderr="listening on any\n")
    ct = FakeStream([], stderr="sh: 1: exec: conntrack: not found\n", code=127)
    nodes = FakeNodes({("router", "tcpdump"): td, ("router", "conntrack"): ct})
    with pytest.raises(RuntimeProblem, match="older than this portlab") as info:
        Trace(nodes, lab, ["router"]).start()
    assert "portlab down" in str(info.value)
    assert td.stopped.is_set() and ct.stopped.is_set()
