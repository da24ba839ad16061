"""Gaps a trainer found writing labs from the docs: each is closed and held here."""

from __future__ import annotations

from portlab.model.context import Binding
from portlab.model.plan import motd
from portlab.views import brief, layout, topology
from portlab.views.markdown import markdown
from tests.unit.labfiles import minimal, parse_data


def test_a_list_item_that_wraps_onto_an_indented_line_stays_a_list() -> None:
    text = ("Before the list:\n- the first item, long enough\n  to wrap onto a second line\n"
            "- the second\n\n1. one\n   and more\n2. two")
    got = markdown(text, color=False).splitlines()
    assert got[0] == "  Before the list:"
    assert got[1] == "  - the first item, long enough to wrap onto a second line"
    assert got[2] == "  - the second"
    assert got[4:] == ["  1. one and more", "  2. two"]


def test_a_template_in_a_role_is_rendered_everywhere_it_is_shown() -> None:
    data = minimal()
    data["nodes"]["a"]["role"] = "The server at {{ addr['a.wan'] }}, port {{ params.port }}."
    data["params"] = {"port": 8080}
    lab = parse_data(data)
    binding = Binding.preview(lab)
    assert binding.role("a") == "The server at 198.51.100.1, port 8080."
    shown = brief.show(binding, color=False)
    assert "The server at 198.51.100.1, port 8080." in shown and "{{" not in shown
    assert layout.of(binding).node("a").role == "The server at 198.51.100.1, port 8080."


def test_a_broken_template_in_a_role_is_a_lab_error_naming_the_key() -> None:
    import pytest

    from portlab.errors import LabError

    data = minimal()
    data["nodes"]["a"]["role"] = "at {{ addr['nope.wan'] }}"
    with pytest.raises(LabError) as err:
        parse_data(data)
    assert "nodes.a.role" in str(err.value)


def three_legged() -> Binding:
    """A router on three networks whose interfaces are listed out of the networks' order."""
    data = minimal()
    data["networks"] = {"outside": {"kind": "public", "prefer": "198.51.100.0/24"},
                        "dmz": {"kind": "private", "prefer": "10.1.0.0/24"},
                        "inside": {"kind": "private", "prefer": "10.2.0.0/24"}}
    data["nodes"] = {
        "net": {"interfaces": {"wan": {"network": "outside", "host": 10}}},
        "fw": {"forwarding": True,
               "interfaces": {"wan": {"network": "outside", "host": 1},
                              "lan": {"network": "inside", "host": 1},
                              "dmz": {"network": "dmz", "host": 1}}},
        "web": {"interfaces": {"eth": {"network": "dmz", "host": 10}}},
        "pc": {"interfaces": {"eth": {"network": "inside", "host": 10}}},
    }
    data["checks"][0]["probes"][0].update({"from": "net", "to": "fw.wan", "kind": "tcp",
                                           "expect": {"state": "closed"}})
    data["solution"] = {"fw": "true"}
    return Binding.preview(parse_data(data))


def test_the_text_diagram_labels_every_interface_on_its_own_network() -> None:
    drawn = topology.draw(layout.of(three_legged())).splitlines()
    title = {net: next(k for k, ln in enumerate(drawn) if ln.strip().startswith(net))
             for net in ("outside", "dmz", "inside")}
    labels = {lbl: next(k for k, ln in enumerate(drawn) if lbl in ln)
              for lbl in ("wan 198.51.100.1", "dmz 10.1.0.1", "lan 10.2.0.1")}
    # each label is printed above the bus of its own network and below the previous one
    assert labels["wan 198.51.100.1"] < title["dmz"]
    assert title["outside"] < labels["dmz 10.1.0.1"] < title["dmz"]
    assert title["dmz"] < labels["lan 10.2.0.1"] < title["inside"]
    assert any("╪" in ln for ln in drawn)  # the router crosses the dmz bus on its way down


def test_the_motd_renders_the_role_too() -> None:
    data = minimal()
    data["nodes"]["a"]["role"] = "Web at {{ addr['a.wan'] }}"
    lab = parse_data(data)
    from portlab.model.plan import Plan

    plan = Plan(Binding.preview(lab), "img")
    assert "Web at 198.51.100.1" in motd(plan, lab.nodes[0])


def test_demo_look_texts_use_the_words_trace_prints_not_tcpdumps_flags() -> None:
    import re

    from portlab import core

    flags = re.compile(r"`(S|S\.|R|R\.|F|F\.|P\.)`|\[(S|S\.|R|R\.|F\.|P\.)\]")
    for lab in core.labs():
        for step in lab.demo:
            assert not flags.search(step.look), (lab.name, step.title, step.look)


def test_token_is_a_tcp_probes_expectation_as_the_docs_say() -> None:
    data = minimal()
    data["nodes"]["a"]["services"][0]["run"] = "portlab-serve tcp --port 80 --token {{ token }}"
    data["checks"][0]["probes"][0].update({"kind": "tcp", "expect": {"token": True}})
    lab = parse_data(data)
    assert lab.checks[0].probes[0].expect == {"token": True}


def _site_to_site(expect: dict[str, object]) -> object:
    """A capture on the internet between two sites' VPN gateways, while pc-a (behind site-a)
    fetches a page from pc-b (behind site-b): only WireGuard between the gateways crossed."""
    import json

    from portlab.backend.base import ExecResult
    from portlab.model.types import Probe
    from portlab.probes.base import ProbeRun
    from portlab.probes.runner import run_probe
    from tests.unit.fakes import SECRET, FakeNodes, nonce_of, served

    wg = [{"proto": "udp", "src": a, "dst": b, "sport": 51820, "dport": 51820}
          for a, b in (("198.51.100.1", "198.51.100.2"), ("198.51.100.2", "198.51.100.1"))]

    def answer(node: str, argv: list[str]) -> ExecResult:
        if "capture" in argv and "start" in argv:
            data: dict[str, object] = {"state": "capturing", "id": "c1"}
        elif "capture" in argv:
            data = {"state": "captured", "packets": wg, "tcpdump": {}}
        else:
            data = {"state": "open", "status": 200, "nonce": nonce_of(argv),
                    "local": "10.1.0.10:40000",
                    "answer": served(argv, "pc-b", "10.1.0.10:40000")}
        return ExecResult(0, json.dumps(data) + "\n", "")

    probe = Probe("capture", "pc-a", "pc-b.lan", 80, {"at": "isp", "iface": "wan"},
                  {"token": True, "served_by": "pc-b", "in_clear": False, **expect},
                  "checks[0].probes[0]")
    addr = {"pc-a.lan": "10.1.0.10", "pc-b.lan": "10.2.0.10", "site-a.wan": "198.51.100.1",
            "site-b.wan": "198.51.100.2"}
    run = ProbeRun(probe, "pc-a", "10.1.0.10", "10.2.0.10", "pc-b.lan", {"addr": addr},
                   FakeNodes(answer), SECRET)
    return run_probe(run)


def test_capture_judges_a_tunnel_between_two_routers() -> None:
    tunnel = {"tunnel": "site-b.wan", "tunnel_port": 51820}
    from portlab.probes.base import Outcome

    site = _site_to_site({**tunnel, "tunnel_from": "site-a.wan"})
    assert site.outcome is Outcome.PASS, (site.got, site.why)  # type: ignore[attr-defined]
    alone = _site_to_site(tunnel)  # measured from pc-a itself, which sends no UDP
    assert alone.outcome is Outcome.FAIL  # type: ignore[attr-defined]
    assert "did not go through the tunnel" in alone.why  # type: ignore[attr-defined]


def test_tunnel_from_goes_with_tunnel() -> None:
    import pytest

    from portlab.errors import LabError

    data = minimal()
    data["checks"][0]["probes"][0].update({"kind": "capture", "at": "a",
                                           "expect": {"tunnel_from": "a.wan"}})
    with pytest.raises(LabError, match="tunnel_from"):
        parse_data(data)
