"""The trainer's tools on real containers: `portlab trace`, `portlab demo`, the HTML report and
the live page, the pages in a real headless Chromium (tests/browser.py)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portlab import core
from portlab.runtime import Instance
from tests.browser import chromium
from tests.integration.helpers import PATIENCE, Running, concurrently, lab_running, portlab

LABS = [lab.name for lab in core.labs() if lab.demo]  # every lab with a demo
TOOLS = ("tcpdump", "conntrack")
FWD = "trainer-fwd"


def tools_left(inst: Instance) -> dict[str, list[str]]:
    """Every tcpdump or conntrack still running on any node of the instance."""
    left = {}
    for node in inst.info.nodes:
        ps = inst.exec(node, ["ps", "-eo", "args"]).stdout.splitlines()[1:]
        found = [line for line in ps if line.split()[:1] and line.split()[0] in TOOLS]
        if found:
            left[node] = found
    return left


def events(run: Running) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def url_of(run: Running) -> str:
    run.wait_for("the page's address", lambda: run.said("live page: http://127.0.0.1:"))
    found = re.search(r"live page: (http://127\.0\.0\.1:\d+/)", run.stderr)
    assert found, run.stderr
    return found.group(1)


def wait_until(what: str, condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + PATIENCE
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"waited in vain for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def fwd(node_image: str) -> Iterator[Instance]:
    """The forwarding lab, solved."""
    with lab_running("forwarding", FWD) as inst:
        portlab("solve", "--instance", FWD, check_rc=0)
        yield inst


def friend_plays(inst: Instance) -> dict[str, Any]:
    port = str(inst.info.params["game_port"])
    answer = json.loads(inst.exec("friend", ["portlab-probe", "minecraft", "router", port]).stdout)
    assert answer["state"] == "open", answer
    return answer


# --- trace ---------------------------------------------------------------------------------------

def test_trace_pairs_the_outside_and_inside_of_a_forwarded_connection(
        fwd: Instance, started: Callable[..., Running]) -> None:
    run = started("trace", "--instance", FWD, "--json")
    run.wait_for("the trace to start", lambda: run.said("Ctrl-C stops"))
    friend_plays(fwd)
    run.wait_for("the translation", lambda: '"nat": "dnat"' in run.stdout)
    assert run.stop(signal.SIGINT) == 0
    assert "nothing of it runs on router any more" in run.stderr
    addresses = {f"{n}.{i}": a.split("/")[0] for n, info in fwd.info.nodes.items()
                 for i, a in info.interfaces.items()}
    port = int(fwd.info.params["game_port"])
    got = events(run)
    nat = [e for e in got if e["type"] == "connection" and e["nat"] == "dnat"]
    assert nat, got
    pair = nat[0]
    assert (pair["original"]["dst"], pair["original"]["dport"]) == (addresses["router.wan"], port)
    assert (pair["translated"]["dst"], pair["translated"]["dport"]) == (
        addresses["gamer-pc.lan"], port)
    assert pair["original"]["src"] == addresses["friend.wan"]  # the source is kept
    assert f"becomes → {addresses['gamer-pc.lan']}:{port}" in pair["text"]
    syns = {(e["link"], e["dst"]) for e in got if e["type"] == "packet" and e["flags"] == "S"}
    assert ("router.wan", addresses["router.wan"]) in syns
    assert ("router.lan", addresses["gamer-pc.lan"]) in syns
    assert tools_left(fwd) == {}


def test_ctrl_c_leaves_no_tcpdump_or_conntrack_on_any_node(
        fwd: Instance, started: Callable[..., Running]) -> None:
    nodes = list(fwd.info.nodes)
    run = started("trace", "--instance", FWD, *[a for n in nodes for a in ("--node", n)])
    run.wait_for("the trace to start", lambda: run.said("Ctrl-C stops"))
    assert set(tools_left(fwd)) == set(nodes)  # it really runs there ...
    friend_plays(fwd)
    run.wait_for("a labelled packet line", lambda: "gamer-pc  lan" in run.stdout)
    assert run.stop(signal.SIGINT) == 0
    assert tools_left(fwd) == {}  # ... and not any more


def test_a_bad_filter_is_refused_in_tcpdumps_words_and_leaves_nothing(fwd: Instance) -> None:
    proc = portlab("trace", "--instance", FWD, "--filter", "tcp prot 80")
    assert proc.returncode == 2, proc.stderr
    assert "does not understand the filter 'tcp prot 80'" in proc.stderr
    assert tools_left(fwd) == {}


def test_trace_at_the_isp_sees_only_udp_to_the_vpn_gateway(
        node_image: str, started: Callable[..., Running]) -> None:
    with lab_running("vpn", "trainer-vpn") as inst:
        portlab("solve", "--instance", "trainer-vpn", check_rc=0)
        gateway = inst.info.nodes["vpn-gw"].interfaces["wan"].split("/")[0]
        wg_port = int(inst.info.params["wg_port"])
        web_port = str(inst.info.params["web_port"])
        run = started("trace", "--instance", "trainer-vpn", "--node", "isp", "--json")
        run.wait_for("the trace to start", lambda: run.said("Ctrl-C stops"))
        answer = json.loads(inst.exec("laptop", ["portlab-probe", "http", "intranet.lan",
                                                 web_port]).stdout)
        assert answer.get("status") == 200, answer
        time.sleep(1)
        assert run.stop(signal.SIGINT) == 0
        packets = [e for e in events(run) if e["type"] == "packet"]
        assert len(packets) >= 4, run.stdout  # the request and its answer, in the tunnel
        for p in packets:
            assert p["proto"] == "udp", p
            assert gateway in (p["src"], p["dst"]) and wg_port in (p["sport"], p["dport"]), p
        assert tools_left(inst) == {}


# --- demo ----------------------------------------------------------------------------------------

def test_every_shipped_lab_has_a_demo() -> None:
    assert [lab.name for lab in core.labs()] == LABS


@pytest.fixture(scope="module")
def demos(node_image: str) -> dict[str, BaseException | None]:
    """Every lab's demo below, side by side (two per core); each test reports its own."""
    return concurrently(run_demo, LABS)


@pytest.mark.parametrize("lab", LABS)
def test_demo_auto_takes_the_lab_from_unsolved_to_solved(
        demos: dict[str, BaseException | None], lab: str) -> None:
    problem = demos[lab]
    if problem is not None:
        raise problem


def run_demo(lab: str) -> None:
    instance = f"demo-{lab}"
    try:
        proc = portlab("demo", lab, "--instance", instance, "--auto", "--delay", "0",
                       check_rc=0)
        out = proc.stdout
        assert "started for it" in out
        first_fail = out.index("FAIL")
        solved = out.index("(the reference solution is applied now)")
        assert first_fail < solved
        assert "FAIL" not in out[solved:]
        assert out.rstrip().splitlines()[-2].startswith("The demo is over and the lab is solved")
        assert "saw meanwhile" in out  # at least one step traced packets
        check = portlab("check", "--instance", instance)
        assert check.returncode == 0, check.stdout
    finally:
        portlab("down", "--instance", instance)


# --- pictures and pages in a real browser --------------------------------------------------------

def test_the_diagram_files_of_a_running_lab_hold_its_addresses(fwd: Instance,
                                                               tmp_path: Path) -> None:
    svg, png = tmp_path / "net.svg", tmp_path / "net.png"
    portlab("show", "forwarding", "--instance", FWD, "--diagram", str(svg), check_rc=0)
    proc = portlab("show", "forwarding", "--instance", FWD, "--diagram", str(png), check_rc=0)
    assert "as PNG" in proc.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    for info in fwd.info.nodes.values():
        for address in info.interfaces.values():
            assert address.split("/")[0] in text


def test_the_html_report_in_chromium(node_image: str, tmp_path: Path) -> None:
    with lab_running("forwarding", "trainer-html") as inst:
        before, after = tmp_path / "before.html", tmp_path / "after.html"
        proc = portlab("check", "--instance", "trainer-html", "--html", str(before))
        assert proc.returncode == 1
        portlab("solve", "--instance", "trainer-html", check_rc=0)
        portlab("check", "--instance", "trainer-html", "--html", str(after), check_rc=0)
        nodes = list(inst.info.nodes)
        with chromium() as browser:
            browser.get(before.as_uri())
            status = browser.execute_script(
                "var s = {}; document.querySelectorAll('article.check').forEach("
                "function (a) { s[a.id] = a.dataset.status; }); return s;")
            assert status == {"check-reach": "fail", "check-real-source": "fail",
                              "check-only-game-port": "pass", "check-lan-internet": "pass"}
            hint = browser.find_element("css selector", "#check-reach .hint").text
            assert "DNAT" in hint
            got = browser.find_element("css selector", "#check-reach dd.got").text
            assert "refused" in got
            for node in nodes:
                assert browser.execute_script(
                    f"return !!document.getElementById('node-{node}')"), node
            browser.get(after.as_uri())
            assert browser.find_element("id", "outcome").text == "PASS"
            assert len(browser.find_elements("css selector", "article[data-status=pass]")) == 4


def test_the_live_page_lights_the_links_of_a_forwarded_connection(
        fwd: Instance, started: Callable[..., Running]) -> None:
    run = started("trace", "--instance", FWD, "--web", "--port", "0")
    url = url_of(run)
    inside = fwd.info.nodes["gamer-pc"].interfaces["lan"].split("/")[0]
    port = fwd.info.params["game_port"]
    with chromium() as browser:
        browser.get(url)
        wait_until("the page to connect", lambda: browser.find_element("id", "conn").text
                   == "connected")

        def packets(link: str) -> int:
            return int(browser.execute_script(
                f"var g = document.getElementById('{link}');"
                "return g ? Number(g.getAttribute('data-packets') || 0) : -1;"))

        assert packets("link-router-wan") == 0
        friend_plays(fwd)
        wait_until("router's wan link to light", lambda: packets("link-router-wan") > 0)
        wait_until("router's lan link to light", lambda: packets("link-router-lan") > 0)
        assert packets("link-friend-wan") == 0  # not traced: never lit
        nat = wait_until("the NAT translation beside the router", lambda: [
            li.text for li in browser.find_elements("css selector", "#nat li")])
        assert any(f"→ {inside}:{port}" in line for line in nat), nat
        note = browser.find_element("css selector", "#node-router text.natnote").text
        assert note.endswith(f"{inside}:{port}")
    assert run.stop(signal.SIGINT) == 0
    assert tools_left(fwd) == {}


def test_the_demo_page_steps_with_its_next_button_to_a_solved_lab(
        node_image: str, started: Callable[..., Running]) -> None:
    instance = "trainer-web"
    try:
        run = started("demo", "forwarding", "--instance", instance, "--web", "--port", "0",
                      stdin=subprocess.PIPE)  # kept open: no Enter ever comes from there
        url = url_of(run)
        with chromium() as browser:
            browser.get(url)
            total = None
            step = 0
            while True:
                browser.find_element("id", "next").click()
                wait_until(f"step {step + 1} to be done", lambda s=step: browser.execute_script(
                    f"return document.body.dataset.step === '{s}' && "
                    "document.body.dataset.stepDone === 'true'"))
                count = browser.find_element("id", "slide-count").text
                total = int(count.split(" of ")[1])
                step += 1
                if step == total:
                    break
            wait_until("the end", lambda: browser.execute_script(
                "return document.body.dataset.ended === 'true'"))
            statuses = [e.get_attribute("data-status") for e in
                        browser.find_elements("css selector", "#slide-checks .check-line")]
            assert statuses and set(statuses) == {"pass"}
        assert run.result("after the last step") == 0, run.stderr
        check = portlab("check", "--instance", instance)
        assert check.returncode == 0, check.stdout
    finally:
        portlab("down", "--instance", instance)
