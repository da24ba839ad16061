"""Minecraft's Server List Ping framing (https://wiki.vg/Server_List_Ping), for portlab-probe
(the client) and portlab-serve (the server). Standard library only.

Every reader here takes bytes that came off the network, so it never trusts them: a bad
frame raises ValueError (or ConnectionError when the other side closed), never anything else.
"""

from __future__ import annotations

import struct

from answers import loads

TYPE_CHECKING = False  # typing only for mypy: see answers.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

PROTOCOL = 765  # 1.20.4
MAX_PACKET = 1 << 20  # the largest status packet read (a real one is a few KiB)
MAX_HANDSHAKE = 1024
NONCE_MARK = "\0portlab:"  # a nonce rides after the host name, as Forge's "\0FML\0" does


def varint(value: int) -> bytes:
    out = b""
    value &= 0xFFFFFFFF
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def read_varint(read: Callable[[int], bytes]) -> int:
    """A VarInt from a stream (`read(1)` gives one byte, b"" at its end)."""
    result = 0
    for i in range(5):
        byte = read(1)
        if not byte:
            raise ConnectionError("the connection closed in the middle of a number")
        result |= (byte[0] & 0x7F) << (7 * i)
        if not byte[0] & 0x80:
            return result
    raise ValueError("a number longer than 5 bytes")


def decode_varint(data: bytes, pos: int = 0) -> tuple[int, int]:
    """A VarInt inside `data` at `pos`: (value, the position after it)."""
    result = 0
    for i in range(5):
        if pos >= len(data):
            raise ValueError("the data ends in the middle of a number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return result, pos
    raise ValueError("a number longer than 5 bytes")


def packet(packet_id: int, payload: bytes) -> bytes:
    body = varint(packet_id) + payload
    return varint(len(body)) + body


def string(text: str) -> bytes:
    raw = text.encode("utf-8", "replace")
    return varint(len(raw)) + raw


def decode_string(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    length, pos = decode_varint(data, pos)
    if length > limit or pos + length > len(data):
        raise ValueError("a string longer than its packet")
    return data[pos:pos + length].decode("utf-8", "replace"), pos + length


def handshake(host: str, port: int, nonce: str = "") -> bytes:
    """The client's handshake (next state: status), with a nonce after the host if given."""
    field = host + (NONCE_MARK + nonce if nonce else "")
    return packet(0x00, varint(PROTOCOL) + string(field) + struct.pack(">H", port & 0xFFFF)
                  + varint(1))


def parse_handshake(body: bytes) -> tuple[int, str, str, int]:
    """A handshake packet's body (id 0x00 first): (protocol, host, nonce, next state)."""
    if body[:1] != b"\x00":
        raise ValueError("not a handshake")
    protocol, pos = decode_varint(body, 1)
    host, pos = decode_string(body, pos, 255 + 80)
    if pos + 2 > len(body):
        raise ValueError("a handshake without its port")
    state, _ = decode_varint(body, pos + 2)
    host, _, nonce = host.partition(NONCE_MARK)
    return protocol, host, nonce, state


def read_packet(read: Callable[[int], bytes], limit: int = MAX_PACKET) -> bytes:
    """One length-prefixed packet's body from a stream."""
    length = read_varint(read)
    if length <= 0 or length > limit:
        raise ValueError(f"a packet of {length} bytes")
    data = b""
    while len(data) < length:
        chunk = read(length - len(data))
        if not chunk:
            raise ConnectionError("the connection closed in the middle of a packet")
        data += chunk
    return data


def parse_status(body: bytes) -> dict[str, Any]:
    """A status response's body (id 0x00, then a JSON string) as a JSON object."""
    if body[:1] != b"\x00":
        raise ValueError(f"not a status answer (packet id {body[:1].hex() or 'missing'})")
    text, _ = decode_string(body, 1, MAX_PACKET)
    status = loads(text)
    if not isinstance(status, dict):
        raise ValueError("the status is not a JSON object")
    return status
