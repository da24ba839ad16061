"""The capture kind with TCP and UDP on real containers: a TCP handshake crossing the forwarding
lab's router (or not, before the port forward) and a lone UDP datagram leaving the LAN."""

from __future__ import annotations

from typing import Any

from portlab import core
from portlab.model.types import Probe
from portlab.probes import run_for
from portlab.probes.base import Outcome
from portlab.probes.runner import resolve
from portlab.runtime import Instance


def capture(inst: Instance, source: str, target: str, port: int, send: str,
            expect: dict[str, Any]):  # type: ignore[no-untyped-def]
    lab = inst.load_lab()
    probe = Probe("capture", source, target, port, {"at": "router", "send": send}, expect,
                  "test")
    return run_for("capture")(resolve(probe, inst.binding(lab), inst))


def test_a_handshake_crosses_the_router_only_once_the_port_is_forwarded(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = core.get_lab("forwarding")
    inst = start_lab(lab, "t-forwarding-capture")
    game = int(lab.params["game_port"])
    refused = capture(inst, "friend", "router.wan", game, "tcp",
                      {"answers": False, "handshake": False})
    assert refused.outcome is Outcome.PASS, (refused.got, refused.why)
    assert "without the handshake's SYN-ACK" in refused.got
    wrong = capture(inst, "friend", "router.wan", game, "tcp", {"answers": False,
                                                                "handshake": True})
    assert wrong.outcome is Outcome.FAIL and "no TCP handshake" in wrong.why

    core.solve(instance="t-forwarding-capture")
    shook = capture(inst, "friend", "router.wan", game, "tcp",
                    {"handshake": True, "in_clear": True})
    assert shook.outcome is Outcome.PASS, (shook.got, shook.why)
    assert "the handshake among them" in shook.got
    denied = capture(inst, "friend", "router.wan", game, "tcp", {"handshake": False})
    assert denied.outcome is Outcome.FAIL and "it was accepted" in denied.why

    # a lone datagram, no handshake: out of the LAN to a port nobody holds
    lone = capture(inst, "gamer-pc", "friend.wan", 5353, "udp",
                   {"answers": False, "in_clear": True})
    assert lone.outcome is Outcome.PASS, (lone.got, lone.why)
    assert "request's own UDP packets" in lone.got
