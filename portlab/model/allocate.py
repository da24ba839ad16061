"""Subnet allocation: every lab instance gets subnets of its own.

A lab network says what it stands for (`public`: the internet, `private`: a
LAN) and may name the subnet it would like (`prefer`), so the first instance
of a lab shows the addresses its brief talks about. Every other instance
gets subnets from the pools below, starting at an offset taken from a hash of
the instance name so that instances started at the same moment seldom race
for the same block.

A network with `ipv6: true` also gets an IPv6 /64 from the documentation
prefix 2001:db8::/32 (RFC 3849), never from Docker (which knows nothing of a
lab's IPv6: nodes add their own addresses). The /64 follows from the IPv4
subnet (`subnet6`), which Docker keeps unique on the machine: two instances
never share a /64, and there is nothing more to allocate, store or race for.

Never handed out: subnets of existing Docker networks, Docker's own default
address pools (172.17.0.0/16-172.31.0.0/16 and 192.168.0.0/16: Docker masquerades its
default bridge's range on the host and would silently change a NAT lab's
meaning), and the host's own connected routes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

# "Public" addresses come from ranges reserved for documentation (RFC 5737) and
# benchmarking (RFC 2544): they look public, yet are never routed on the real
# internet.
PUBLIC_POOL = [
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
    IPv4Network("198.18.0.0/15"),
]
PRIVATE_POOL = [IPv4Network("10.0.0.0/8")]

# Docker's default address pools (moby's ipamutils defaults).
DOCKER_DEFAULT_POOLS = [
    IPv4Network("172.17.0.0/16"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
]


@dataclass(frozen=True)
class Request:
    """One network of a lab, as the allocator sees it."""

    name: str
    kind: str  # "public" or "private"
    prefix: int
    prefer: IPv4Network | None = None


# IPv6: the documentation prefix. A lab may name a /64 of its first 256 (2001:db8:1::/64 up to
# 2001:db8:ff::/64) for its first instance; every other /64 carries the IPv4 subnet's address in
# its second 32 bits (10.60.0.0/24 -> 2001:db8:a3c:0::/64), which never falls among those.
IPV6_PREFIX = IPv6Network("2001:db8::/32")
PREFER6_BLOCK = IPv6Network("2001:db8::/40")


def subnet6(v4: IPv4Network, prefer: IPv4Network | None = None,
            prefer6: IPv6Network | None = None) -> IPv6Network:
    """The IPv6 /64 of a network whose IPv4 subnet is `v4`: its preferred one (`prefer6`) when
    the network got its preferred IPv4 subnet, else the one derived from `v4`."""
    if prefer6 is not None and v4 == prefer:
        return prefer6
    return IPv6Network((int(IPV6_PREFIX.network_address) | int(v4.network_address) << 64, 64))


class AllocationError(Exception):
    pass


def _candidates(pool: list[IPv4Network], prefix: int, start: int) -> Iterator[IPv4Network]:
    blocks: list[tuple[IPv4Network, int]] = [
        (block, 2 ** (prefix - block.prefixlen)) for block in pool if block.prefixlen <= prefix
    ]
    total = sum(count for _, count in blocks)
    if total == 0:
        return
    for i in range(total):
        index = (start + i) % total
        for block, count in blocks:
            if index < count:
                base = int(block.network_address) + index * 2 ** (32 - prefix)
                yield IPv4Network((base, prefix))
                break
            index -= count


def _offset(instance: str, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{instance}/{name}".encode()).digest()[:4], "big")


def allocate(
    requests: Iterable[Request],
    instance: str,
    taken: Iterable[IPv4Network],
    *,
    use_preferred: bool = True,
    pinned: Mapping[str, IPv4Network] | None = None,
) -> dict[str, IPv4Network]:
    """Pick one free subnet per request.

    `taken` lists what is already in use (existing Docker networks, host
    routes); Docker's default pools are always avoided. A network in `pinned`
    gets exactly that subnet (a student's variant: the addresses they were
    shown), or an AllocationError says what is in the way.
    """
    busy = list(taken) + DOCKER_DEFAULT_POOLS
    result: dict[str, IPv4Network] = {}
    for req in requests:
        if pinned and req.name in pinned:
            want = pinned[req.name]
            clash = next((other for other in busy if want.overlaps(other)), None)
            if clash is not None:
                raise AllocationError(f"network '{req.name}' must be {want} (this variant's), "
                                      f"but {clash} is in use on this machine")
            result[req.name] = want
            busy.append(want)
            continue
        pool = PUBLIC_POOL if req.kind == "public" else PRIVATE_POOL
        options: list[IPv4Network] = []
        if use_preferred and req.prefer is not None:
            options.append(req.prefer)
        chosen = None
        for net in _chain(options, _candidates(pool, req.prefix, _offset(instance, req.name))):
            if not any(net.overlaps(other) for other in busy):
                chosen = net
                break
        if chosen is None:
            raise AllocationError(
                f"no free /{req.prefix} subnet left for network '{req.name}' ({req.kind})"
            )
        result[req.name] = chosen
        busy.append(chosen)
    return result


def preferred(requests: Iterable[Request]) -> dict[str, IPv4Network]:
    """The subnets a lab would get on an empty machine (for `show` and `render`)."""
    return allocate(requests, "", [], use_preferred=True)


def _chain(first: list[IPv4Network], rest: Iterator[IPv4Network]) -> Iterator[IPv4Network]:
    yield from first
    yield from rest
