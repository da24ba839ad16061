"""IPv6 on real containers: the ipv6 lab started from the file `portlab render` writes, with
plain Compose (its one-shot seal included), and through portlab's own `up`.

* Once the nodes run, the host's kernel has given up IPv6 on the bridge of each network (its
  MTU is below IPv6's minimum): the host has no address there and answers nothing. Frames
  between the nodes keep their own MTU: a 1400-byte IPv6 ping crosses.
* The nodes have the lab's IPv6 addresses and routes; a probe over IPv6 sees the client's own
  global address (no NAT), and the solution passes over IPv6 as over IPv4.
* The seal is no node of the lab, and `down` removes it with the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from portlab import core, runtime
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import models
from portlab.model.types import Probe
from portlab.probes import run_for
from portlab.probes.base import Outcome, ProbeResult
from portlab.probes.runner import resolve


def _bridges(inst: runtime.Instance) -> dict[str, str]:
    """IPv6 network -> the host's name for its bridge."""
    lab = inst.load_lab()
    out = {}
    for name in inst.binding(lab).subnets6:
        found = docker_api.client().networks.get(inst.info.networks[name].engine_name)
        out[name] = found.attrs["Options"]["com.docker.network.bridge.name"]
    return out


def _sealed(bridge: str) -> None:
    link = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", bridge],
                                     capture_output=True, text=True, check=True).stdout)[0]
    assert link["mtu"] == models.SEAL_MTU, link
    assert not os.path.exists(f"/proc/sys/net/ipv6/conf/{bridge}")
    addrs = subprocess.run(["ip", "-6", "addr", "show", "dev", bridge], capture_output=True,
                           text=True, check=True).stdout
    assert addrs.strip() == "", addrs


def test_the_rendered_file_seals_the_bridges_and_the_lab_works_over_ipv6(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = core.get_lab("ipv6")
    inst = start_lab(lab, "t-ipv6-compose")
    bridges = _bridges(inst)
    assert sorted(bridges) == ["internet", "lan"]
    for bridge in bridges.values():
        _sealed(bridge)
    assert sorted(inst.containers) == sorted(n.name for n in lab.nodes)  # the seal is none
    binding = inst.binding(lab)
    six = binding.addresses6
    laptop = json.loads(inst.exec("laptop", ["ip", "-j", "-6", "addr", "show", "dev", "lan"])
                        .stdout)[0]
    assert f"{six['laptop.lan']}" in [a["local"] for a in laptop["addr_info"]]
    route = inst.exec("laptop", ["ip", "-6", "route", "show", "default"]).stdout
    assert f"via {six['router.lan']} dev lan" in route
    # full-size frames cross the sealed bridge (the nodes' MTU is 1500)
    big = inst.exec("laptop", ["ping", "-6", "-n", "-c1", "-W2", "-s", "1400", "-M", "do",
                               six["router.lan"]])
    assert big.exit_code == 0, big.stdout + big.stderr

    report = runtime.run_checks(lab, inst)
    assert report.failed_ids() == list(lab.untouched_fails), report.failed_ids()
    dev = int(lab.params["dev_port"])
    # every probe kind that takes ipv6: the laptop's dev server, open to the internet
    seen = _probe(inst, "capture", dev, {"at": "router", "send": "http"},
                  {"handshake": True, "in_clear": True, "seen_source": "outsider.wan"})
    assert seen.outcome is Outcome.PASS, (seen.got, seen.why)
    assert f"[{six['outsider.wan']}]" in seen.got and "the handshake among them" in seen.got
    scanned = _probe(inst, "scan", None, {"ports": [dev + 1]}, {"ports": {dev: "open"}})
    assert scanned.outcome is Outcome.PASS, (scanned.got, scanned.why)
    assert scanned.got == f"nmap says: {dev} open, {dev + 1} closed"
    core.solve(instance=inst.name)
    report = runtime.run_checks(lab, inst)
    assert report.passed, [(r.id, r.outcome) for r in report.results]
    shut = _probe(inst, "capture", dev, {"at": "router", "send": "tcp"},
                  {"answers": False, "handshake": False})
    assert shut.outcome is Outcome.PASS, (shut.got, shut.why)
    assert "without the handshake's SYN-ACK" in shut.got
    filtered = _probe(inst, "scan", None, {"ports": [dev + 1]},
                      {"ports": {dev: "filtered", dev + 1: "filtered"}})
    assert filtered.outcome is Outcome.PASS, (filtered.got, filtered.why)


def _probe(inst: runtime.Instance, kind: str, port: int | None, options: dict[str, Any],
           expect: dict[str, Any]) -> ProbeResult:
    """A probe from the outsider to the laptop's IPv6 address."""
    lab = inst.load_lab()
    probe = Probe(kind, "outsider", "laptop.lan", port, {**options, "ipv6": True}, expect,
                  "test")
    return run_for(kind)(resolve(probe, inst.binding(lab), inst))


def test_up_seals_the_bridges_and_down_leaves_nothing(node_image: str) -> None:
    instance = "t-ipv6-up"
    core.up("ipv6", instance=instance)
    try:
        inst = runtime.instances()[instance]
        bridges = _bridges(inst)
        for bridge in bridges.values():
            _sealed(bridge)
        leftover = docker_api.client().containers.list(
            all=True, filters={"label": [f"{docker_api.LABEL_INSTANCE}={instance}",
                                         docker_api.LABEL_SEAL]})
        assert leftover == []  # the seal ran to its end and went
    finally:
        core.down(instance=instance)
    assert not [b for b in bridges.values()
                if subprocess.run(["ip", "link", "show", "dev", b],
                                  capture_output=True).returncode == 0]
