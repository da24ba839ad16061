"""The vpn lab, beyond the generic lab tests (test_labs.py): on one running instance.

What the generic tests cannot say: the brief of a running instance prints the
gateway's real public key (computed on the host by portlab's own X25519,
compared with what `wg` on the gateway says); an untouched laptop's request
is seen in the clear by the capture at the ISP, and that is why the check
fails; `portlab status` names the WireGuard implementation each wg0 really
uses (userspace wireguard-go on a kernel without the module, as here); and
with the tunnel up the ISP sees only WireGuard UDP.

The tests share one instance and run in file order: first untouched, then solved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab import core, runtime
from portlab.runtime import run_checks
from tests.integration.helpers import lab_running, portlab

INSTANCE = "t-vpn-focus"
LAB = core.get_lab("vpn")


@pytest.fixture(scope="module")
def inst(node_image: str) -> Iterator[runtime.Instance]:
    with lab_running("vpn", INSTANCE) as running:
        yield running


def host_kernel_has_wireguard() -> bool:
    """The module is loaded, or there is one to load, on the machine running the tests."""
    if Path("/sys/module/wireguard").exists():
        return True
    release = Path("/proc/sys/kernel/osrelease").read_text().strip()
    modules = Path("/lib/modules") / release
    return modules.is_dir() and any(modules.rglob("wireguard.ko*"))


def wireguard_status() -> dict[str, dict]:
    data = json.loads(portlab("status", "--json", "--instance", INSTANCE, check_rc=0).stdout)
    return {n["name"]: n["wireguard"] for n in data["instances"][0]["nodes"]}


def test_brief_prints_the_running_gateways_public_key(inst: runtime.Instance) -> None:
    shown = portlab("show", "vpn", "--instance", INSTANCE, check_rc=0).stdout
    real = inst.exec("vpn-gw", ["wg", "show", "wg0", "public-key"])
    assert real.exit_code == 0, real.stderr
    key = real.stdout.strip()
    assert len(key) == 44 and f"gateway public key: `{key}`" in shown
    # the same key for the laptop's config in the tasks
    assert f"PublicKey = {key}" in shown


def test_untouched_status_and_the_isp_sees_the_request_in_the_clear(
        inst: runtime.Instance) -> None:
    status = wireguard_status()
    assert status["isp"] is None and status["intranet"] is None
    expected = "kernel" if host_kernel_has_wireguard() else "userspace"
    assert status["laptop"] == {"available": expected, "interfaces": {}}
    assert status["vpn-gw"] == {"available": expected, "interfaces": {"wg0": expected}}

    [result] = run_checks(LAB, inst, only=["isp-sees-only-wireguard"]).results
    assert not result.passed
    [probe] = result.probes
    assert "in the clear" in probe.why
    intranet = inst.binding(LAB).context["addr"]["intranet.lan"]
    own = [p for p in probe.data["packets"]
           if p.get("proto") == "tcp" and p.get("dst") == intranet and p.get("dport") == 80]
    assert own, probe.data["packets"]


def test_solved_status_names_the_wireguard_kind_and_isp_sees_only_udp(
        inst: runtime.Instance) -> None:
    portlab("solve", "vpn", "--instance", INSTANCE, check_rc=0)
    status = wireguard_status()
    expected = "kernel" if host_kernel_has_wireguard() else "userspace"
    for node in ("laptop", "vpn-gw"):
        assert status[node] == {"available": expected, "interfaces": {"wg0": expected}}
    human = portlab("status", "--instance", INSTANCE, check_rc=0).stdout
    assert f"tunnels: wg0 ({expected})" in human

    [result] = run_checks(LAB, inst, only=["isp-sees-only-wireguard"]).results
    assert result.passed, [(p.got, p.why) for p in result.probes]
    ctx = inst.binding(LAB).context
    laptop, gateway = ctx["addr"]["laptop.wlan"], ctx["addr"]["vpn-gw.wan"]
    packets = result.probes[0].data["packets"]
    between = [p for p in packets if {p["src"], p["dst"]} == {laptop, gateway}]
    assert between and all(p["proto"] == "udp" and 51820 in (p["sport"], p["dport"])
                           for p in between)
    assert "None of them was one of the request's own TCP packets" in result.probes[0].got


def test_a_full_tunnel_with_wg_quick_passes_too(inst: runtime.Instance) -> None:
    """AllowedIPs = 0.0.0.0/0: wg-quick's policy routing (and its src_valid_mark sysctl, which a
    container may not write) works, and the checks still see the tunnel, by behaviour."""
    script = ("wg-quick down wg0\n"
              "sed -i 's#^AllowedIPs.*#AllowedIPs = 0.0.0.0/0#' /etc/wireguard/wg0.conf\n"
              "wg-quick up wg0\n")
    runtime.run_scripts(inst, LAB, {"laptop": script})
    rules = inst.exec("laptop", ["ip", "rule"]).stdout
    assert "not from all fwmark 0xca6c lookup 51820" in rules
    report = run_checks(LAB, inst)
    assert report.failed_ids() == [], [
        (r.id, [(p.got, p.why) for p in r.probes]) for r in report.results if not r.passed]
