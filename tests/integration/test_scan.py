"""The scan kind on real containers: nmap from the firewall lab's attacker at the server, before
and after the firewall (the same report the unit tests read, judged for real)."""

from __future__ import annotations

from portlab import core
from portlab.model.types import Probe
from portlab.probes import run_for
from portlab.probes.base import Outcome
from portlab.probes.runner import resolve
from portlab.runtime import Instance


def scan(inst: Instance, expect: dict[int, str]):  # type: ignore[no-untyped-def]
    lab = inst.load_lab()
    probe = Probe("scan", "attacker", "server.wan", None, {"ports": [4444]},
                  {"ports": expect}, "test")
    return run_for("scan")(resolve(probe, inst.binding(lab), inst))


def test_nmap_sees_the_firewall_close_ssh_and_the_database(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = core.get_lab("firewall")
    inst = start_lab(lab, "t-firewall-scan")
    ssh, web, db = (int(lab.params[k]) for k in ("ssh_port", "web_port", "db_port"))
    want = {ssh: "filtered", web: "open", db: "filtered"}
    before = scan(inst, want)
    assert before.outcome is Outcome.FAIL
    assert f"{ssh} open" in before.got and f"{db} open" in before.got and "4444 closed" in \
        before.got
    core.solve(instance="t-firewall-scan")
    after = scan(inst, want)
    assert after.outcome is Outcome.PASS, (after.got, after.why)
    assert after.got == f"nmap says: {ssh} filtered, {web} open, {db} filtered, 4444 filtered"
