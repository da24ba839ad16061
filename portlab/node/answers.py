"""Answers that prove who gave them, and to which connection. Shared by portlab-serve (which
signs), portlab-probe (which reports what it sent) and portlab's checks (which verify).

Every node of a lab instance holds a key of its own: an HMAC of the instance's secret and
the node's name, given to that node only (its start configuration, written to KEY_FILE).
portlab itself keeps the secret, so it can work out every node's key; no node can work out
another's, and no answer reveals one. A lab server (portlab-serve) signs each answer with
its node's key: a proof, an HMAC of what the answer says:

    kind     the server's kind (http, minecraft, tcp, udp)
    node     the node that served it
    client   the client's address and port as the server saw them
    server   the server's own address and port of that connection
    nonce    what the client sent to be echoed (portlab's checks send a fresh one each time)
    seq      the connection's sequence number as the server saw it (TCP only, see below)
    token    the instance's token, as the server was started with

A check recomputes the proof with the key of the node the answer names. An answer made on
another node (a server of the router's own in the PC's place) names that other node, or
fails the proof; an answer rewritten on the way (a relay that edits the client address)
fails the proof; an old answer replayed fails the nonce.

`seq` proves the connection itself. TCP numbers the bytes of each direction from a random
start chosen when the connection opens; NAT (DNAT, masquerade, port forwarding) rewrites
addresses and ports and never these numbers, while a relay or proxy in between opens a new
connection to the server, with numbers of its own. The server reports the next byte it
expects from the client (rcv_nxt) when it answers; the probe reports the next byte it will
send (snd_nxt) after its request. The same connection end to end gives the same number.
Reading them takes TCP_REPAIR, so CAP_NET_ADMIN (portlab's nodes and graders have it; a
server started by an ordinary user reports no seq, and its answers are judged without).

Standard library only: this runs on the node image's python3, and in portlab itself.
"""

from __future__ import annotations

import json
import os
import re
import socket

# hashlib and hmac are imported where a proof is made or checked, and typing only when
# type-checking: portlab-probe, which seldom needs them, starts anew for every probe
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

KEY_FILE = "/run/portlab/answer.key"
VERSION = "portlab-answer/1"
FIELDS = ("kind", "node", "client", "server", "nonce", "seq", "token")
NONCE = re.compile(r"^[A-Za-z0-9]{8,64}$")
PROOF = re.compile(r"^[0-9a-f]{32}$")
MAX_JSON_DEPTH = 64  # levels of JSON read from the network
MAX_FIELD = 200  # characters of any field; longer is not an answer of portlab's

# linux/tcp.h: read a socket's sequence numbers (as CRIU does), with CAP_NET_ADMIN
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
TCP_REPAIR_OFF, TCP_REPAIR_OFF_NO_WP = 0, -1


def node_key(secret: str, node: str) -> bytes:
    """The key of `node` in the instance whose secret this is."""
    import hashlib
    import hmac

    return hmac.new(secret.encode(), f"portlab node key\0{node}".encode(),
                    hashlib.sha256).digest()


def message(fields: Mapping[str, object]) -> bytes:
    """What a proof signs: the fields, in a fixed order, one per line."""
    lines = [VERSION]
    for name in FIELDS:
        value = fields.get(name, "")
        lines.append(f"{name}={'' if value is None else value}")
    return "\n".join(lines).encode("utf-8", "replace")


def proof(key: bytes, fields: Mapping[str, object]) -> str:
    import hashlib
    import hmac

    return hmac.new(key, message(fields), hashlib.sha256).hexdigest()[:32]


def signed(key: bytes | None, fields: Mapping[str, object]) -> dict[str, str]:
    """The fields as an answer carries them, with their proof when there is a key."""
    out = {name: str(fields.get(name, "") or "") for name in FIELDS}
    if key:
        out["proof"] = proof(key, out)
    return out


def valid(key: bytes, answer: Mapping[str, object]) -> bool:
    """Whether `answer` (as it came back) carries the right proof for what it says."""
    given = answer.get("proof")
    if not isinstance(given, str) or not PROOF.match(given):
        return False
    fields = {}
    for name in FIELDS:
        value = answer.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_FIELD:
            return False
        fields[name] = value
    import hmac

    return hmac.compare_digest(proof(key, fields), given)


def load_key(path: str | None = None) -> bytes | None:
    """This node's key, or None where there is none (a server run outside a lab).
    $PORTLAB_KEY_FILE names another file (portlab's own tests)."""
    path = path or os.environ.get("PORTLAB_KEY_FILE") or KEY_FILE
    try:
        with open(path) as fh:
            text = fh.read().strip()
        return bytes.fromhex(text) if text else None
    except (OSError, ValueError):
        return None


def clean_nonce(text: object) -> str:
    """A nonce as a client sent it, or "" if it is not one (letters and digits, 8 to 64)."""
    return text if isinstance(text, str) and NONCE.match(text) else ""


def _queue_seq(sock: socket.socket, queue: int) -> int | None:
    """TCP_QUEUE_SEQ of one queue: rcv_nxt (TCP_RECV_QUEUE) or snd_nxt (TCP_SEND_QUEUE).

    Repair mode is on for a moment only, and the socket is left as it was: turning repair
    off also clears SO_REUSEADDR (the kernel's sk_reuse), which its TIME_WAIT remnant would
    keep, and then a new server could not bind the port for a minute."""
    try:
        reuse = sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    except OSError:
        return None  # no CAP_NET_ADMIN here, or not a TCP socket
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
        return int(sock.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ)) & 0xFFFFFFFF
    except OSError:
        return None
    finally:
        try:  # off again, without the window probe the plain "off" sends (Linux 4.19+)
            sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
        except OSError:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF)
            except OSError:
                pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuse)
        except OSError:
            pass


def received_seq(sock: socket.socket) -> str:
    """The next sequence number this side expects from its peer, as text ("" if unknown)."""
    value = _queue_seq(sock, TCP_RECV_QUEUE)
    return "" if value is None else str(value)


def sent_seq(sock: socket.socket) -> str:
    """The sequence number of the next byte this side will send, as text ("" if unknown)."""
    value = _queue_seq(sock, TCP_SEND_QUEUE)
    return "" if value is None else str(value)


def loads(text: str | bytes, depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads for text from the network: ValueError, never RecursionError, and no deeper
    than `depth` levels."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _depth(value, depth) > depth:
        raise ValueError("JSON nested too deeply")
    return value


def _depth(value: Any, limit: int) -> int:
    """How deeply `value` nests (stops counting past `limit`), without recursion."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        item, level = todo.pop()
        deepest = max(deepest, level)
        if level > limit:
            return level
        if isinstance(item, dict):
            todo.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, level + 1) for v in item)
    return deepest
