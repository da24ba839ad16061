"""What the vpn lab adds, without Docker: X25519 keys, template functions, pcap and `wg show`
parsing, and the schema of the capture and wireguard probe kinds."""

from __future__ import annotations

import base64
import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from portlab.backend.base import ExecResult
from portlab.errors import LabError
from portlab.model import wgkeys
from portlab.model.context import SAMPLE_TOKEN, Binding
from portlab.model.templating import render
from portlab.probes import run_for, wireguard
from portlab.probes.base import Outcome
from portlab.probes.runner import resolve
from tests.unit.fakes import FakeNodes
from tests.unit.labfiles import minimal, parse_data

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"


def _probe_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("portlab_probe_tool", NODE / "probe.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_probe_module()
probe_tool = sys.modules["pcap"]  # the probe's pcap reader, from the tools' own folder

# --- X25519 (RFC 7748) -----------------------------------------------------------------------

RFC7748_VECTORS = [  # section 5.2: scalar, u-coordinate, result
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
]


@pytest.mark.parametrize(("scalar", "u", "out"), RFC7748_VECTORS)
def test_x25519_matches_rfc7748_vectors(scalar: str, u: str, out: str) -> None:
    assert wgkeys.x25519(bytes.fromhex(scalar), bytes.fromhex(u)).hex() == out


def test_x25519_iterated_once_and_a_thousand_times() -> None:
    k = u = wgkeys.BASE_POINT
    for i in range(1000):
        k, u = wgkeys.x25519(k, u), k
        if i == 0:
            assert k.hex() == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
    assert k.hex() == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"


def test_public_keys_agree_on_a_shared_secret_as_in_rfc7748_section_6_1() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = wgkeys.public_key(base64.b64encode(alice).decode())
    bob_pub = wgkeys.public_key(base64.b64encode(bob).decode())
    assert base64.b64decode(alice_pub).hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert base64.b64decode(bob_pub).hex() == (
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = wgkeys.x25519(alice, base64.b64decode(bob_pub))
    assert shared == wgkeys.x25519(bob, base64.b64decode(alice_pub))
    assert shared.hex() == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def test_derived_keys_are_wireguard_keys_fixed_per_token_and_name() -> None:
    key = wgkeys.derive_private_key("tok1", "vpn-gw")
    raw = base64.b64decode(key)
    assert len(key) == 44 and len(raw) == 32
    assert raw[0] & 7 == 0 and raw[31] & 0x80 == 0 and raw[31] & 0x40  # clamped like wg genkey
    assert key == wgkeys.derive_private_key("tok1", "vpn-gw")
    assert key != wgkeys.derive_private_key("tok2", "vpn-gw")
    assert key != wgkeys.derive_private_key("tok1", "laptop")


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        wgkeys.public_key("not base64!")
    with pytest.raises(ValueError):
        wgkeys.public_key(base64.b64encode(b"short").decode())


def test_templates_get_key_functions_and_ip() -> None:
    lab = parse_data(minimal())
    ctx = Binding(lab, "mini", lab.preferred_subnets(), SAMPLE_TOKEN).context
    pub = render("{{ wg_public_key('gw') }}", ctx)
    assert pub == wgkeys.public_key(render("{{ wg_private_key('gw') }}", ctx))
    assert render("{{ ip('net', 7) }}", ctx) == "198.51.100.7"
    placeholder = Binding(lab, "mini", lab.preferred_subnets(), "<token>").context
    assert "shown once the lab is up" in render("{{ wg_public_key('gw') }}", placeholder)


# --- pcap reading (portlab-probe capture) ----------------------------------------------------


def _ipv4(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    import socket

    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + l4


def _pcap(linktype: int, frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        out += struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame
    return out


def test_read_pcap_summarises_tcp_and_udp_on_ethernet_and_linux_cooked() -> None:
    tcp = struct.pack(">HHIIBBHHH", 23456, 80, 1, 0, 5 << 4, 0x02, 1000, 0, 0)
    udp = struct.pack(">HHHH", 40000, 51820, 8 + 32, 0) + b"x" * 32
    eth = b"\x00" * 12 + b"\x08\x00"
    frames = [eth + _ipv4("10.0.0.2", "10.0.1.10", 6, tcp),
              eth + _ipv4("10.0.0.2", "198.18.0.20", 17, udp)]
    packets, linktype = probe_tool.read_pcap(_pcap(1, frames))
    assert linktype == 1
    assert packets[0] | {"time": 0} == {"src": "10.0.0.2", "dst": "10.0.1.10", "proto": "tcp",
                                         "sport": 23456, "dport": 80, "flags": "S", "payload": 0,
                                         "length": 40, "time": 0}
    assert packets[1]["proto"] == "udp" and packets[1]["dport"] == 51820
    assert packets[1]["payload"] == 32
    sll2 = b"\x08\x00" + b"\x00" * 18
    packets, linktype = probe_tool.read_pcap(_pcap(276, [sll2 + _ipv4("1.2.3.4", "5.6.7.8", 6,
                                                                          tcp)]))
    assert linktype == 276 and packets[0]["src"] == "1.2.3.4" and packets[0]["dport"] == 80


# --- wg show dump ----------------------------------------------------------------------------


def test_wg_dump_is_parsed_into_peers() -> None:
    dump = ("PRIV\tPUB\t51820\toff\n"
            "PEERKEY=\t(none)\t198.18.40.1:46992\t10.9.0.2/32\t1700000000\t2420\t1900\toff\n"
            "OTHER=\t(none)\t(none)\t(none)\t0\t0\t0\toff\n")
    iface, peers = wireguard.parse_dump(dump)
    assert iface["public_key"] == "PUB" and iface["listen_port"] == "51820"
    assert peers[0]["endpoint"] == "198.18.40.1:46992"
    assert peers[0]["allowed_ips"] == ["10.9.0.2/32"] and peers[0]["latest_handshake"] > 0
    assert peers[1]["endpoint"] == "" and peers[1]["allowed_ips"] == []


# --- schema of the new probe kinds ----------------------------------------------------------


def _with_probe(probe: dict[str, Any]) -> dict[str, Any]:
    data = minimal()
    data["checks"][0]["probes"] = [probe]
    return data


@pytest.mark.parametrize(("probe", "words"), [
    ({"kind": "capture", "from": "b", "to": "a.wan", "port": 80}, "needs 'at'"),
    ({"kind": "capture", "from": "b", "to": "a.wan", "port": 80, "at": "nope"},
     "no node called 'nope'"),
    ({"kind": "capture", "from": "b", "to": "a.wan", "port": 80, "at": "a",
      "expect": {"tunnel": "a.wan"}}, "go together"),
    ({"kind": "capture", "from": "b", "to": "a.wan", "port": 80, "at": "a",
      "expect": {"tunnel": "a.lan", "tunnel_port": 1}}, "not a node.interface"),
    ({"kind": "wireguard", "from": "a", "expect": {"peer": "b.nope"}}, "not a node.interface"),
    ({"kind": "http", "from": "b", "to": "a.wan", "port": 80,
      "expect": {"seen_source": "{{ ip('nope', 2) }}"}}, "no network called 'nope'"),
])
def test_new_probe_kinds_are_validated(probe: dict[str, Any], words: str) -> None:
    with pytest.raises(LabError) as info:
        parse_data(_with_probe(probe))
    assert words in str(info.value)


def test_new_probe_kinds_load() -> None:
    lab = parse_data(_with_probe({"kind": "wireguard", "from": "a", "iface": "wg0",
                                  "expect": {"peer": "b.wan", "handshake_within": 60}}))
    assert lab.checks[0].probes[0].kind == "wireguard"
    lab = parse_data(_with_probe({"kind": "http", "from": "b", "to": "a.wan", "port": 80,
                                  "device": "wan", "expect": {"answers": False}}))
    assert lab.checks[0].probes[0].options == {"device": "wan"}


@pytest.mark.parametrize(("allowed", "outcome"), [
    ("10.9.0.2/32", Outcome.PASS), ("10.9.0.0/24", Outcome.FAIL),
    ("10.9.0.2/32,10.9.0.3/32", Outcome.FAIL)])
def test_allowed_only_fails_a_peer_allowed_more_than_its_address(allowed: str,
                                                                outcome: Outcome) -> None:
    lab = parse_data(_with_probe({"kind": "wireguard", "from": "a", "iface": "wg0", "expect": {
        "allowed_ip": "10.9.0.2", "allowed_only": True, "handshake_within": 60}}))
    dump = f"PRIV\tPUB\t51820\toff\nPEER=\t(none)\t198.18.40.1:4699\t{allowed}\t995\t1\t1\toff\n"
    nodes = FakeNodes(lambda node, argv: ExecResult(0, "1000\n" + dump, ""))
    result = run_for("wireguard")(resolve(lab.checks[0].probes[0], Binding.preview(lab), nodes))
    assert result.outcome is outcome
    if outcome is Outcome.FAIL:
        assert result.observed({}) == "wide" and "10.9.0.2/32 alone" in result.why
