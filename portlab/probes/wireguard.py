"""wireguard: a node's own view of its WireGuard peers (`wg show IFACE dump`): who shook hands.

This probe sends nothing itself. Run on a VPN gateway, it answers what
traffic seen elsewhere cannot prove alone: that the gateway, with its own
key, completed a handshake with the peer, recently. The node it reads is the
one whose word counts (a learner's laptop could print anything; the
gateway's kernel or wireguard-go state is what the tunnel really is). Put a
probe that sends traffic through the tunnel before it in the same check, so
that a handshake is due.

A handshake is "recent" within `handshake_within` seconds (default 180: a
WireGuard session is renewed every 2 minutes while traffic flows and is
unusable after 3).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from portlab.model.probekinds import COUNT, KindSchema
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, source_text

DEFAULT_WITHIN = 180
# The node's clock, then its view of the interface; `wg` missing is exit 127 (no verdict).
# wireguard-go answers on a socket in the node's /run/wireguard; run from a grader beside the
# node (its processes, not its files), `wg` reaches that socket through the process's root.
SCRIPT = """date +%s && { command -v wg >/dev/null || exit 127; } &&
if [ ! -S "/run/wireguard/$1.sock" ]; then
  for root in /proc/[0-9]*/root; do
    if [ -S "$root/run/wireguard/$1.sock" ]; then
      mkdir -p /run/wireguard && ln -sf "$root/run/wireguard/$1.sock" "/run/wireguard/$1.sock"
      break
    fi
  done 2>/dev/null
fi
wg show "$1" dump"""
# What `wg show` says of an interface that is not up: "No such device" where the kernel has
# WireGuard, "Protocol not supported" where it has not (and no wireguard-go runs it either).
NO_INTERFACE = ("No such device", "Protocol not supported")


def parse_dump(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`wg show IFACE dump`: the interface line, then one tab-separated line per peer.
    Raises ValueError for a line `wg` never prints."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}, []
    head = lines[0].split("\t")
    if len(head) != 4:
        raise ValueError(f"an interface line with {len(head)} fields: {lines[0][:80]!r}")
    iface = {"public_key": head[1], "listen_port": head[2]}
    peers = []
    for line in lines[1:]:
        f = line.split("\t")
        if len(f) != 8 or not all(x.isdigit() for x in f[4:7]):
            raise ValueError(f"a peer line that is not one: {line[:80]!r}")
        endpoint = "" if f[2] == "(none)" else f[2]
        allowed = [] if f[3] == "(none)" else [a for a in f[3].split(",") if a]
        peers.append({"public_key": f[0], "endpoint": endpoint, "allowed_ips": allowed,
                      "latest_handshake": int(f[4]), "rx": int(f[5]), "tx": int(f[6])})
    return iface, peers


def _only(allowed: str, ip: str) -> bool:
    """Whether an AllowedIPs entry is that one address (a /32, or /128) and nothing more."""
    try:
        net = ipaddress.ip_network(allowed, strict=False)
        return net.num_addresses == 1 and net.network_address == ipaddress.ip_address(ip)
    except ValueError:
        return False


def _covers(allowed: list[str], ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(a, strict=False) for a in allowed)
    except ValueError:
        return False


def describe(peer: dict[str, Any], now: int) -> str:
    key = peer["public_key"][:10] + "..."
    shake = ("never shook hands" if not peer["latest_handshake"]
             else f"last handshake {max(0, now - peer['latest_handshake'])} s ago")
    return (f"peer {key} (endpoint {peer['endpoint'] or 'not known yet'}, allowed ips "
            f"{', '.join(peer['allowed_ips']) or 'none'}): {shake}, received {peer['rx']} bytes")


def run(job: ProbeRun) -> ProbeResult:
    iface = str(job.probe.options.get("iface", "wg0"))
    expect = job.probe.expect
    within = int(expect.get("handshake_within", DEFAULT_WITHIN))
    peer_ref = expect.get("peer")
    peer_ip = job.address_of(str(peer_ref)) if peer_ref else None
    allowed_ip = expect.get("allowed_ip")
    sent = f"nothing: read `wg show {iface}` on {job.source} (its own view of its peers)"
    target = f"{job.source}'s WireGuard interface {iface}"
    res = job.nodes.exec(job.source, ["sh", "-c", SCRIPT, "sh", iface])
    out_lines = res.stdout.strip().split("\n", 1)
    err = (res.stderr or res.stdout).strip()[-300:]
    if res.exit_code in (126, 127):
        raise CannotObserve(f"`wg` could not be run on {job.source} (exit {res.exit_code}: {err})",
                            f"the node's WireGuard tools are missing: {FRESH}", sent=sent)
    if not out_lines[0].strip().isdigit():
        raise CannotObserve(f"reading `wg show` on {job.source} gave garbage: {res.stdout[:200]!r}",
                            f"the node's own tools are broken: {FRESH}", sent=sent)
    if res.exit_code != 0:
        if not any(words in err for words in NO_INTERFACE):
            raise CannotObserve(f"`wg show {iface} dump` failed on {job.source} (exit "
                                f"{res.exit_code}): {err}",
                                f"run `wg show {iface}` on {job.source} to see why", sent=sent)
        return ProbeResult(Outcome.FAIL, sent, source_text(job), target,
                           f"no WireGuard interface {iface} there ({err})",
                           f"{job.source} has no WireGuard interface {iface} up", {"error": err})
    now = int(out_lines[0])
    try:
        info, peers = parse_dump(out_lines[1] if len(out_lines) > 1 else "")
    except ValueError as exc:
        raise CannotObserve(f"`wg show {iface} dump` on {job.source} printed something it never "
                            f"prints: {exc}", f"the node's own tools are broken: {FRESH}",
                            sent=sent) from None
    data = {"interface": info, "peers": peers, "now": now}
    if not peers:
        return ProbeResult(Outcome.FAIL, sent, source_text(job), target,
                           f"{iface} has no peers at all",
                           "no peer's public key is registered on this side of the tunnel",
                           data)
    got = "; ".join(describe(p, now) for p in peers)
    candidates = peers
    if allowed_ip:
        candidates = [p for p in candidates if _covers(p["allowed_ips"], str(allowed_ip))]
        if not candidates:
            return ProbeResult(Outcome.FAIL, sent, source_text(job), target, got,
                               f"no peer is allowed the address {allowed_ip}", data)
        wide = [a for p in candidates for a in p["allowed_ips"] if not _only(a, str(allowed_ip))]
        if expect.get("allowed_only") and wide:
            return ProbeResult(Outcome.FAIL, sent, source_text(job), target, got,
                               f"the peer allowed {allowed_ip} is allowed {', '.join(wide[:4])} "
                               f"too: it may send from, and gets the packets for, every address "
                               f"there; allow it {allowed_ip}/32 alone", data, seen="wide")
    fresh = [p for p in candidates
             if p["latest_handshake"] and now - p["latest_handshake"] <= within]
    if not fresh:
        return ProbeResult(Outcome.FAIL, sent, source_text(job), target, got,
                           f"no handshake within the last {within} s: the tunnel is not up "
                           "between these two (wrong keys, a wrong endpoint, or nothing sent)",
                           data)
    if peer_ip:
        matching = [p for p in fresh if p["endpoint"].rsplit(":", 1)[0] == peer_ip]
        if not matching:
            return ProbeResult(Outcome.FAIL, sent, source_text(job), target, got,
                               f"the fresh handshake came from "
                               f"{fresh[0]['endpoint'] or 'an unknown endpoint'}, expected "
                               f"{peer_ref} = {peer_ip}", data)
    return ProbeResult(Outcome.PASS, sent, source_text(job), target, got, "", data)


SCHEMA = KindSchema("wireguard",
                    "A node's WireGuard peers (wg show): a recent handshake, from whom, for "
                    "which address", options={"iface": str},
                    expects={"peer": str, "allowed_ip": str, "allowed_only": bool,
                             "handshake_within": COUNT},
                    needs_target=False, needs_port=False, interfaces={"iface": None})
KIND = ProbeKind(SCHEMA, run, node=())
