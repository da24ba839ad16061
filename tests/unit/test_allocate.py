"""Subnet allocation: preferred when free, never colliding, never in Docker's pools."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from portlab.model.allocate import (
    DOCKER_DEFAULT_POOLS,
    AllocationError,
    Request,
    allocate,
    preferred,
)

REQS = [Request("internet", "public", 24, IPv4Network("198.51.100.0/24")),
        Request("home", "private", 24, IPv4Network("10.0.0.0/24"))]


def test_first_instance_gets_the_preferred_subnets() -> None:
    got = allocate(REQS, "forwarding", [])
    assert got == {"internet": IPv4Network("198.51.100.0/24"), "home": IPv4Network("10.0.0.0/24")}
    assert preferred(REQS) == got


def test_taken_subnets_are_avoided_and_instances_do_not_collide() -> None:
    first = allocate(REQS, "a", [])
    second = allocate(REQS, "b", list(first.values()))
    for net in second.values():
        assert not any(net.overlaps(other) for other in first.values())
    assert second["internet"].subnet_of(IPv4Network("198.18.0.0/15")) or \
        second["internet"] == IPv4Network("203.0.113.0/24")
    assert second["home"].subnet_of(IPv4Network("10.0.0.0/8"))


def test_fifty_instances_get_fifty_distinct_pairs() -> None:
    taken: list[IPv4Network] = []
    for k in range(50):
        got = allocate(REQS, f"i{k}", taken)
        for net in got.values():
            assert not any(net.overlaps(t) for t in taken)
            assert not any(net.overlaps(p) for p in DOCKER_DEFAULT_POOLS)
        taken += got.values()
    assert len(set(taken)) == 100


def test_a_network_someone_else_created_is_respected() -> None:
    foreign = IPv4Network("10.0.0.0/16")
    got = allocate(REQS, "forwarding", [foreign])
    assert not got["home"].overlaps(foreign)


def test_exhaustion_is_a_clear_error() -> None:
    with pytest.raises(AllocationError, match="no free /24 subnet left for network 'internet'"):
        allocate([REQS[0]], "x", [IPv4Network("198.0.0.0/8"), IPv4Network("203.0.113.0/24")])
