"""WireGuard keys for labs: X25519 (RFC 7748) in pure Python, and keys derived per instance.

A VPN lab needs a gateway whose key pair differs from one lab instance to
the next, and whose public key the brief can print. Both follow from the
instance's token: the private key is a hash of the token and a name
(`derive_private_key`), and the public key is computed from it here, the way
`wg pubkey` does. Nothing needs the `wg` tool or a crypto library on the host.

Lab templates see two functions (docs/lab-format.md):
`wg_private_key(name)` and `wg_public_key(name)`. A key derived this way is
as secret as the token itself: good for a lab, never for a real VPN.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

P = 2**255 - 19
A24 = 121665
BASE_POINT = (9).to_bytes(32, "little")


def _decode_scalar(k: bytes) -> int:
    """RFC 7748 decodeScalar25519: clear the low 3 bits and the top bit, set bit 254."""
    b = bytearray(k)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return int.from_bytes(b, "little")


def _decode_u(u: bytes) -> int:
    """RFC 7748 decodeUCoordinate for X25519: mask the top bit."""
    return int.from_bytes(u, "little") & ((1 << 255) - 1)


def x25519(k: bytes, u: bytes) -> bytes:
    """The X25519 function of RFC 7748 (section 5): scalar k times the point with u-coordinate u."""
    if len(k) != 32 or len(u) != 32:
        raise ValueError("X25519 takes a 32-byte scalar and a 32-byte u-coordinate")
    scalar = _decode_scalar(k)
    x1 = _decode_u(u) % P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in reversed(range(255)):
        bit = (scalar >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a = (x2 + z2) % P
        aa = a * a % P
        b = (x2 - z2) % P
        bb = b * b % P
        e = (aa - bb) % P
        c = (x3 + z3) % P
        d = (x3 - z3) % P
        da = d * a % P
        cb = c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + A24 * e) % P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def clamp(k: bytes) -> bytes:
    """A private key as `wg genkey` writes it: clamped (RFC 7748 decodeScalar25519's bits)."""
    return _decode_scalar(k).to_bytes(32, "little")


def public_key(private: str) -> str:
    """`wg pubkey`: the base64 public key of a base64 private key."""
    try:
        raw = base64.b64decode(private, validate=True)
    except ValueError:
        raise ValueError("not a base64 WireGuard key") from None
    if len(raw) != 32:
        raise ValueError("a WireGuard key is 32 bytes (44 base64 characters)")
    return base64.b64encode(x25519(raw, BASE_POINT)).decode()


def derive_private_key(token: str, name: str) -> str:
    """A private key fixed by (instance token, name): one per instance and name."""
    digest = hashlib.sha256(f"portlab wireguard key\0{token}\0{name}".encode()).digest()
    return base64.b64encode(clamp(digest)).decode()


def template_functions(token: str) -> dict[str, Callable[[str], str]]:
    """`wg_private_key(name)` and `wg_public_key(name)` for lab templates of one instance.

    Without a real instance (a brief shown before `portlab up`, whose token is
    a placeholder like "<token>"), they return a placeholder rather than a
    key that would look real and be wrong.
    """
    real = bool(token) and not token.startswith("<")

    def wg_private_key(name: str) -> str:
        if not real:
            return f"<{name}'s private key: known once the lab is up>"
        return derive_private_key(token, str(name))

    def wg_public_key(name: str) -> str:
        if not real:
            return f"<{name}'s public key: shown once the lab is up>"
        return public_key(derive_private_key(token, str(name)))

    return {"wg_private_key": wg_private_key, "wg_public_key": wg_public_key}
