"""The scan kind: nmap's XML report (as nmap printed it on the firewall lab's attacker,
tests/unit/data), judged port by port; the loader's side; and a broken nmap is an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portlab.backend.base import ExecResult
from portlab.errors import LabError
from portlab.model.context import Binding
from portlab.model.types import Match
from portlab.probes import run_for
from portlab.probes.base import CannotObserve, Outcome
from portlab.probes.runner import resolve
from portlab.probes.scan import argv_for, states_of
from tests.unit.fakes import FakeNodes
from tests.unit.labfiles import minimal, parse_data

DATA = Path(__file__).parent / "data"
UNTOUCHED = (DATA / "nmap-firewall-untouched.xml").read_text()
SOLVED = (DATA / "nmap-firewall-solved.xml").read_text()


def lab_with(**probe: Any):  # type: ignore[no-untyped-def]
    data = minimal()
    data["params"] = {"ssh_port": 22}
    data["checks"][0]["probes"] = [{"kind": "scan", "from": "b", "to": "a.wan", **probe}]
    return parse_data(data)


def scan(report: str, code: int = 0, **probe: Any) -> Any:
    lab = lab_with(**probe)
    calls: list[list[str]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        return ExecResult(code, report, "")

    result = run_for("scan")(resolve(lab.checks[0].probes[0], Binding.preview(lab),
                                     FakeNodes(answer)))
    return result, calls


def test_nmaps_report_is_read_port_by_port() -> None:
    assert states_of(UNTOUCHED) == {22: "open", 80: "open", 3306: "open", 4444: "closed"}
    assert states_of(SOLVED) == {22: "filtered", 80: "open", 3306: "filtered",
                                 4444: "filtered"}


def test_the_loader_reads_ports_and_states() -> None:
    lab = lab_with(ports=[4444], proto="tcp",
                   expect={"ports": {"{{ params.ssh_port }}": "filtered", 80: "open",
                                     3306: {"any": ["filtered", "closed"]}}})
    probe = lab.checks[0].probes[0]
    assert probe.options == {"ports": [4444], "proto": "tcp"}
    assert probe.expect["ports"] == {22: "filtered", 80: "open",
                                     3306: Match(("filtered", "closed"))}


@pytest.mark.parametrize(("probe", "words"), [
    ({"expect": {}}, "a scan probe needs expect.ports"),
    ({"expect": {"ports": {22: "shut"}}}, "expected one of: open, closed, filtered"),
    ({"expect": {"ports": [22]}}, "expected a mapping of port to state"),
    ({"ports": "22,80", "expect": {"ports": {22: "open"}}}, "expected a list of ports"),
    ({"expect": {"ports": {70000: "open"}}}, "expected a number from 1 to 65535"),
    ({"to": "198.51.100.0/24", "expect": {"ports": {22: "open"}}}, "or an IPv4 address"),
])
def test_broken_scans_are_named(probe: dict[str, Any], words: str) -> None:
    with pytest.raises(LabError, match=words.replace("(", r"\(").replace(")", r"\)")):
        lab_with(**probe)


def test_a_solved_firewall_passes_and_an_open_one_fails_naming_each_port() -> None:
    expect = {"ports": {22: "filtered", 80: "open", 3306: "not-open"}}
    good, calls = scan(SOLVED, ports=[4444], expect=expect)
    assert good.outcome is Outcome.PASS
    assert good.got == "nmap says: 22 filtered, 80 open, 3306 filtered, 4444 filtered"
    assert calls == [argv_for([22, 80, 3306, 4444], "tcp", 10.0, "198.51.100.1")]
    assert calls[0][-1] == "198.51.100.1"  # one address, never a subnet
    bad, _ = scan(UNTOUCHED, ports=[4444], expect=expect)
    assert bad.outcome is Outcome.FAIL
    assert bad.why == ("port 22: expected filtered, nmap says open; "
                       "port 3306: expected not-open, nmap says open")
    assert "4444 closed" in bad.got


def test_udp_scans_say_so() -> None:
    assert "-sU" in argv_for([53], "udp", 5, "10.0.0.1")
    assert "-sU" not in argv_for([53], "tcp", 5, "10.0.0.1")


@pytest.mark.parametrize(("report", "code"), [("", 127), ("garbage", 0), ("<html/>", 0),
                                              (UNTOUCHED.replace('portid="80"', 'portid="81"'),
                                               0)])
def test_no_report_to_trust_is_an_error_never_a_verdict(report: str, code: int) -> None:
    with pytest.raises(CannotObserve):
        scan(report, code, expect={"ports": {22: "not-open", 80: "not-open"}})


def _report(ports: dict[int, str], *, timedout: bool = False) -> str:
    rows = "".join(f'<port protocol="tcp" portid="{p}"><state state="{s}"/></port>'
                   for p, s in ports.items())
    flag = ' timedout="true"' if timedout else ""
    return (f'<?xml version="1.0"?><nmaprun><host{flag}><ports><extraports state="closed" '
            f'count="8000"/>{rows}</ports></host><runstats><finished/></runstats></nmaprun>')


def test_others_not_open_fails_on_any_other_known_port_open() -> None:
    expect = {"ports": {8080: "not-open"}, "others": "not-open"}
    result, calls = scan(_report({8080: "closed", 25565: "open", 31337: "open"}),
                         ports=[25565], expect=expect)
    assert result.outcome is Outcome.FAIL and result.observed({}) == "open"
    assert "port 31337 open too" in result.why and "25565" not in result.why
    assert calls[1][calls[1].index("--top-ports") + 1] == "10000"  # every port nmap knows
    result, _ = scan(_report({8080: "closed", 25565: "open"}), ports=[25565], expect=expect)
    assert result.outcome is Outcome.PASS and "no other known port open" in result.got


def test_a_port_nmap_does_not_know_is_scanned_when_the_target_names_it() -> None:
    """A forward on 47123 is in no list of known ports: the target's own rules name it, and
    nmap then says whether it is open. Only nmap's answer decides."""
    lab = lab_with(ports=[25565], expect={"ports": {8080: "not-open"}, "others": "not-open"})
    calls: list[tuple[str, list[str]]] = []
    rules = ("-A PREROUTING -i wan -p tcp --dport 47123 -j DNAT --to-destination 10.0.0.10:8080\n"
             "-A PREROUTING -p tcp --dport 40000:40010 -j DNAT --to 10.0.0.10\n"
             "tcp LISTEN 0 4096 0.0.0.0:5555 0.0.0.0:*\n")

    def answer(node: str, argv: list[str]) -> ExecResult:
        calls.append((node, argv))
        if argv[0] == "sh":
            return ExecResult(0, rules, "")
        if "47123" in ",".join(argv):
            return ExecResult(0, _report({47123: "open", 40000: "closed", 40010: "closed",
                                          5555: "closed"}), "")
        return ExecResult(0, _report({8080: "filtered", 25565: "open"}), "")

    result = run_for("scan")(resolve(lab.checks[0].probes[0], Binding.preview(lab),
                                     FakeNodes(answer)))
    assert result.outcome is Outcome.FAIL and "port 47123 open too" in result.why
    assert calls[2][0] == "a"  # read on the target node ...
    ports = calls[3][1][calls[3][1].index("-p") + 1].split(",")
    assert {"47123", "40000", "40010", "5555"} <= set(ports)  # ... ranges by both ends
    assert "10" not in ports and "0" not in ports  # no piece of an address


def test_a_fresh_source_is_a_free_address_added_for_the_scan_and_removed() -> None:
    """The scan runs under portlab-fresh: the address picked for it is added for that one
    command and removed after it, in the same exec."""
    lab = lab_with(fresh_source=True, expect={"ports": {3306: "filtered"}})
    binding = Binding.preview(lab)
    calls: list[tuple[str, list[str]]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        calls.append((node, argv))
        return ExecResult(0, _report({3306: "filtered"}) if argv[3] == "nmap" else "", "")

    result = run_for("scan")(resolve(lab.checks[0].probes[0], binding, FakeNodes(answer)))
    assert result.outcome is Outcome.PASS
    ((node, argv),) = calls
    tool, iface, address, nmap = argv[:4]
    assert (node, tool, iface, nmap) == ("b", "portlab-fresh", "wan", "nmap")
    assert argv[argv.index("-S") + 1] == address and argv[argv.index("-e") + 1] == iface
    assert address not in {str(a) for a in binding.addresses.values()}
    assert "picked for this scan" in result.source


def test_an_address_the_fresh_tool_could_not_add_is_an_error_never_a_verdict() -> None:
    lab = lab_with(fresh_source=True, expect={"ports": {3306: "filtered"}})
    for code, said, why in [(75, "portlab-fresh: taken: x is on wan already", "already"),
                            (76, "portlab-fresh: could not add x: Operation not permitted",
                             "could not give b the address")]:
        nodes = FakeNodes(lambda node, argv, c=code, s=said: ExecResult(c, "", s))
        with pytest.raises(CannotObserve, match=why):
            run_for("scan")(resolve(lab.checks[0].probes[0], Binding.preview(lab), nodes))


def test_named_ports_are_bounded() -> None:
    from portlab.probes.scan import MAX_NAMED, named_ports

    assert named_ports("--dport 1:65535 99999 0 1.2.3.4") == [1, 65535]
    assert len(named_ports(" ".join(str(n) for n in range(1, 9000)))) == MAX_NAMED


def test_a_scan_nmap_gave_up_on_is_an_error_never_a_pass() -> None:
    with pytest.raises(CannotObserve, match="gave up on the host"):
        scan(_report({8080: "closed"}, timedout=True),
             expect={"ports": {8080: "not-open"}, "others": "not-open"})


def test_a_check_that_scans_every_known_port_runs_after_the_others() -> None:
    """Its thousands of packets would crowd a capture running beside it."""
    from portlab.probes.runner import run_checks

    data = minimal()
    data["params"] = {"ssh_port": 22}
    loud = {"id": "loud", "title": "nothing else open", "probes": [
        {"kind": "scan", "from": "b", "to": "a.wan",
         "expect": {"ports": {80: "open"}, "others": "not-open"}}]}
    data["checks"] = [loud, *data["checks"]]
    lab = parse_data(data)
    ran: list[str] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        ran.append(argv[0] if argv[0] == "nmap" else argv[3])
        if argv[0] == "nmap":
            return ExecResult(0, _report({80: "open"}), "")
        return ExecResult(0, '{"state": "closed", "kind": "http"}', "")

    report = run_checks(lab, Binding.preview(lab), FakeNodes(answer))
    assert [r.id for r in report.results] == ["loud", "web"]  # reported in the lab's order
    assert ran == ["http", "nmap", "nmap"]  # run after the quiet check


def test_a_real_connection_can_come_from_a_fresh_address_too() -> None:
    """A tcp probe with `fresh_source: true` connects (a whole TCP stack, not nmap's bare SYN)
    from an address picked for it, added to the source node and removed after."""
    data = minimal()
    data["checks"][0]["probes"] = [{"kind": "tcp", "from": "b", "to": "a.wan", "port": 3306,
                                    "fresh_source": True, "expect": {"state": "filtered"}}]
    lab = parse_data(data)
    binding = Binding.preview(lab)
    calls: list[list[str]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        source = argv[argv.index("--source") + 1]
        return ExecResult(0, '{"kind": "tcp", "state": "filtered", "target": "x:3306", '
                             f'"source": "{source}"}}', "")

    result = run_for("tcp")(resolve(lab.checks[0].probes[0], binding, FakeNodes(answer)))
    assert result.outcome is Outcome.PASS
    (probe,) = calls  # one exec: the address added for the probe alone, and removed after it
    tool, _, address, command = probe[:4]
    assert (tool, command) == ("portlab-fresh", "portlab-probe")
    assert probe[probe.index("--source") + 1] == address
    assert address not in {str(a) for a in binding.addresses.values()}
    assert "picked for this probe" in result.source


def test_a_fresh_source_is_ipv4_only() -> None:
    data = minimal()
    data["checks"][0]["probes"] = [{"kind": "tcp", "from": "b", "to": "a.wan", "port": 80,
                                    "fresh_source": True, "ipv6": True,
                                    "expect": {"state": "open"}}]
    with pytest.raises(LabError, match="fresh_source picks an IPv4 address"):
        parse_data(data)


def test_ports_the_rules_name_get_real_connections_which_a_rule_cannot_tell_from_clients() -> None:
    """A forward that lets only real clients' SYNs through (`-m length ! --length 40:59`: not
    nmap's bare 44-byte SYN) is closed to the raw scan and open to a connect scan (-sT) of
    the ports the rules name, the expected ones included."""
    lab = lab_with(expect={"ports": {8080: "not-open"}, "others": "not-open"})
    calls: list[list[str]] = []
    rules = "-A PREROUTING -i wan -p tcp --dport 8080 -m length ! --length 40:59 -j DNAT\n"

    def answer(node: str, argv: list[str]) -> ExecResult:
        calls.append(argv)
        if argv[0] == "sh":
            return ExecResult(0, rules, "")
        if "-sT" in argv:
            return ExecResult(0, _report({8080: "open", 40: "closed", 59: "closed"}), "")
        return ExecResult(0, _report({8080: "closed"}), "")

    result = run_for("scan")(resolve(lab.checks[0].probes[0], Binding.preview(lab),
                                     FakeNodes(answer)))
    assert result.outcome is Outcome.FAIL and "port 8080: expected not-open" in result.why
    connect = next(argv for argv in calls if "-sT" in argv)
    assert "8080" in connect[connect.index("-p") + 1].split(",")


@pytest.mark.parametrize(("outputs", "scans", "passed"), [
    (["", "REPORT"], 2, True),  # lost on the way (Docker), then read
    (["<nmaprun><host>", "REPORT"], 2, True),  # garbled on the way, then read
    (["", ""], 2, None),  # lost twice: an error, never a verdict
])
def test_a_report_lost_on_its_way_is_scanned_for_once_more(
        outputs: list[str], scans: int, passed: bool | None) -> None:
    lab = lab_with(expect={"ports": {3306: "filtered"}})
    ran: list[list[str]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        ran.append(argv)
        out = outputs[len(ran) - 1]
        return ExecResult(0, _report({3306: "filtered"}) if out == "REPORT" else out, "")

    probe = resolve(lab.checks[0].probes[0], Binding.preview(lab), FakeNodes(answer))
    if passed is None:
        with pytest.raises(CannotObserve, match="gave no report to read"):
            run_for("scan")(probe)
    else:
        assert run_for("scan")(probe).outcome is Outcome.PASS
    assert len(ran) == scans and all(argv[0] == "nmap" for argv in ran)


def test_a_failing_nmap_is_not_scanned_for_again() -> None:
    lab = lab_with(expect={"ports": {3306: "filtered"}})
    ran: list[list[str]] = []

    def answer(node: str, argv: list[str]) -> ExecResult:
        ran.append(argv)
        return ExecResult(1, "", "nmap: something went wrong")

    with pytest.raises(CannotObserve, match="exit 1"):
        run_for("scan")(resolve(lab.checks[0].probes[0], Binding.preview(lab),
                                FakeNodes(answer)))
    assert len(ran) == 1


def test_probes_at_once_never_share_a_fresh_address() -> None:
    """A lab's checks run at once: two probes from one node that picked the same address
    would break each other (the second could not add it, or the first would take it away
    from under the second). An address held by a probe is picked by no other until given
    back."""
    import threading

    from portlab.probes.common import _HELD, fresh_address

    data = minimal()
    data["checks"][0]["probes"] = [{"kind": "tcp", "from": "b", "to": "a.wan", "port": 3306,
                                    "fresh_source": True, "expect": {"state": "filtered"}}]
    lab = parse_data(data)
    job = resolve(lab.checks[0].probes[0], Binding.preview(lab),
                  FakeNodes(lambda node, argv: ExecResult(0, "", "")))
    entered = threading.Barrier(40)
    picked: list[str] = []

    def one() -> None:
        with fresh_address(job) as fresh:
            picked.append(fresh.address)
            entered.wait(timeout=10)  # all 40 hold their address at the same time

    threads = [threading.Thread(target=one) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(picked) == 40 and len(set(picked)) == 40
    assert not _HELD  # every address given back
