"""Every parser of what comes back from the network, fuzzed: no input raises out of it.

portlab-probe and portlab-serve read bytes that a learner's (or a student's) node may have
made up: malformed, huge, deeply nested, invalid UTF-8, cut off. Whatever they are, a parser
returns what it found or raises the one error its caller turns into an observation
(ValueError, or ConnectionError for a stream that ended); nothing else escapes, so a hostile
answer is judged as a failure, never an error of portlab's (hypothesis; tests/unit/
test_hostile_answers.py sends the same over real sockets)."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portlab.node import answers
from portlab.probes import common, scan
from portlab.trace import events

NODE = Path(__file__).resolve().parents[2] / "portlab" / "node"
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"portlab_fuzz_{name}", NODE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tool("probe")  # puts the tools folder on sys.path, as in the node
serve = _tool("serve")
# as the tools import them, from their own folder (portlab-probe imports a kind's module only
# when that kind is asked for)
sockets = importlib.import_module("sockets")
mcproto = sys.modules["mcproto"]
pcap = importlib.import_module("pcap")
listeners = importlib.import_module("listeners")

# JSON as an attacker writes it: any nesting (deeper than any parser's recursion), any types
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=30)


def deep(levels: int, kind: str = "[") -> str:
    """JSON nested `levels` deep: what crashed portlab-probe before (RecursionError)."""
    close = "]" if kind == "[" else "}"
    inner = "[" if kind == "[" else '{"a":'
    return inner * levels + "1" + close * levels


HOSTILE_JSON = [deep(100_000), deep(100_000, "{"), deep(70), "[" * 50_000, '{"a":' * 40_000,
                "1" * 50_000, '"\udc80"', "\xff\xfe", "", "null", "[]", '{"node": {"x": 1}}']


def raises_only(fn: Any, *args: Any, allowed: tuple[type[BaseException], ...] = (ValueError,)
                ) -> Any:
    try:
        return fn(*args)
    except allowed:
        return None


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 70))
def test_varints(data: bytes, pos: int) -> None:
    raises_only(mcproto.decode_varint, data, pos)
    raises_only(mcproto.read_varint, io.BytesIO(data).read, allowed=(ValueError, ConnectionError))


@FUZZ
@given(st.binary(max_size=400))
def test_minecraft_frames(data: bytes) -> None:
    raises_only(mcproto.parse_handshake, data)
    raises_only(mcproto.parse_status, data)
    raises_only(mcproto.read_packet, io.BytesIO(data).read,
                allowed=(ValueError, ConnectionError))


@FUZZ
@given(json_values)
def test_a_status_of_any_shape(status: Any) -> None:
    text = json.dumps(status)
    body = b"\x00" + mcproto.varint(len(text.encode())) + text.encode()
    got = raises_only(mcproto.parse_status, body)
    if got is not None:
        summary = sockets.status_summary(got)
        assert all(isinstance(v, str) and len(v) <= 200 for v in summary.values())
        found = sockets.stand_in(got.get("portlab"))
        assert found is None or all(isinstance(v, str) and len(v) <= 200
                                    for v in found.values())


def test_hostile_json_is_a_value_error_never_a_crash() -> None:
    for text in HOSTILE_JSON:
        raises_only(answers.loads, text)
        body = b"\x00" + mcproto.varint(len(text.encode("utf-8", "surrogatepass"))) + \
            text.encode("utf-8", "surrogatepass")
        raises_only(mcproto.parse_status, body)
        assert sockets.parse_udp(text.encode("utf-8", "surrogatepass"))["reply"] is not None
        raw = b"HTTP/1.0 200 OK\r\n\r\n" + text.encode("utf-8", "surrogatepass")
        assert sockets.parse_http(raw)["status"] == 200


@FUZZ
@given(st.binary(max_size=600))
def test_http_answers(raw: bytes) -> None:
    got = raises_only(sockets.parse_http, raw)
    if got is not None:
        assert 100 <= got["status"] <= 999 and len(got["body"]) <= 2000


@FUZZ
@given(json_values, st.binary(max_size=64))
def test_http_and_udp_bodies(value: Any, junk: bytes) -> None:
    body = json.dumps(value).encode() + junk
    assert sockets.parse_http(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n" + body)["status"] == 200
    udp = sockets.parse_udp(body)
    assert len(udp["reply"]) <= 2000


@FUZZ
@given(json_values)
def test_stand_in_fields_are_flat_bounded_text(value: Any) -> None:
    found = sockets.stand_in(value)
    if found is not None:
        assert all(isinstance(v, str) and len(v) <= 200 for v in found.values())
        assert not answers.valid(b"k" * 32, found)  # nothing made up verifies


@FUZZ
@given(st.dictionaries(st.sampled_from([*answers.FIELDS, "proof", "x"]), json_values,
                       max_size=10))
def test_verifying_any_answer(answer: dict[str, Any]) -> None:
    assert answers.valid(answers.node_key("s", "n"), answer) in (True, False)
    answers.clean_nonce(answer.get("nonce"))


@FUZZ
@given(st.binary(max_size=2000))
def test_pcap_files_and_frames(data: bytes) -> None:
    raises_only(pcap.read_pcap, data, allowed=(ValueError, OSError))
    for linktype in (1, 101, 113, 276, 7):
        pcap.parse_frame(data, linktype)


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=8), st.sampled_from([1, 113, 276,
                                                                                   101]))
def test_a_pcap_of_hostile_frames(frames: list[bytes], linktype: int) -> None:
    """A well-formed pcap file (tcpdump wrote it) of frames a node made up."""
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for frame in frames:
        data += struct.pack("<IIII", 1, 2, len(frame), len(frame)) + frame
    packets, _ = pcap.read_pcap(data)
    assert isinstance(packets, list)


@FUZZ
@given(st.text(max_size=80))
def test_proc_addresses(text: str) -> None:
    raises_only(listeners.proc_address, text)


@FUZZ
@given(st.binary(max_size=600))
def test_a_udp_datagram_to_the_server(data: bytes) -> None:
    found = serve.UDP_NONCE.search(data[:512])
    if found:
        assert answers.clean_nonce(found.group(1).decode())


@FUZZ
@given(st.text(max_size=3000))
def test_portlab_probe_output_read_by_portlab(text: str) -> None:
    got = common._answer(text)
    assert got is None or isinstance(got["state"], str)


def test_portlab_probe_output_nested_deeply_is_no_answer() -> None:
    for text in HOSTILE_JSON:
        assert common._answer(text) is None or text in ("[]",)


@FUZZ
@given(st.text(max_size=2000))
def test_nmap_reports(text: str) -> None:
    raises_only(scan.states_of, text, allowed=(ValueError, SyntaxError))


@FUZZ
@given(st.text(max_size=400))
def test_tcpdump_and_conntrack_lines(line: str) -> None:
    events.packet(line, "router", {"wan": "internet"})
    events.connection(line, "router")
