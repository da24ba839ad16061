"""Subnet allocation: preferred when free, never colliding, never in Docker's pools; a
variant's own subnets waited for while another lab holds them."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from portlab.errors import RuntimeProblem
from portlab.model.allocate import (
    DOCKER_DEFAULT_POOLS,
    AllocationError,
    Request,
    allocate,
    preferred,
)
from portlab.progress import Quiet
from portlab.runtime import lifecycle
from portlab.runtime.lifecycle import Shape

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


class Said(Quiet):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def detail(self, text: str) -> None:
        self.lines.append(text)


class HeldFor:
    """A lab of this machine (a grade, unless `instance` says otherwise) that holds one subnet
    for the first `looks` looks."""

    def __init__(self, subnet: str, looks: int, instance: str = "grade-bob-1a2b3c") -> None:
        self.subnet, self.left, self.asked = IPv4Network(subnet), looks, 0
        self.instance = instance

    def instances(self) -> dict[str, object]:
        return {"forwarding": object()}  # this scope's lab that is up

    def lab_subnets(self) -> list[tuple[IPv4Network, str]]:
        self.asked += 1
        self.left -= 1
        return [(self.subnet, self.instance)] if self.left >= 0 else []


VARIANT = Shape(student="s1", subnets={"internet": IPv4Network("198.19.232.0/24")})


def test_a_variant_waits_while_another_lab_holds_its_subnet(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(lifecycle, "VARIANT_POLL", 0)
    labs, said = HeldFor("198.19.232.0/24", 2), Said()
    lifecycle.wait_for_variant(labs, VARIANT, said)  # type: ignore[arg-type]
    assert labs.asked == 3
    assert said.lines == ["this variant's subnet 198.19.232.0/24 is held by another lab on "
                          "this machine; waiting (up to 120 s)"]


def test_a_variant_gives_up_when_its_subnet_stays_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "VARIANT_POLL", 0)
    monkeypatch.setattr(lifecycle, "VARIANT_WAIT", 0.05)
    with pytest.raises(RuntimeProblem, match="is still held by another lab on this machine"):
        lifecycle.wait_for_variant(HeldFor("198.19.0.0/16", 10**6),  # type: ignore[arg-type]
                                   VARIANT, Said())


def test_no_wait_without_a_variant_a_clash_or_the_backend_s_answer() -> None:
    labs = HeldFor("10.0.0.0/8", 10**6)
    lifecycle.wait_for_variant(labs, Shape(), Said())  # type: ignore[arg-type]
    other = HeldFor("10.0.0.0/8", 10**6)  # held, but not this variant's
    lifecycle.wait_for_variant(other, VARIANT, Said())  # type: ignore[arg-type]
    up = HeldFor("198.19.232.0/24", 10**6, instance="forwarding")  # this scope's lab: plan() says
    lifecycle.wait_for_variant(up, VARIANT, Said())  # type: ignore[arg-type]
    lifecycle.wait_for_variant(object(), VARIANT, Said())  # type: ignore[arg-type]
    assert labs.asked == 0 and other.asked == 1 and up.asked == 1


def test_a_variant_waits_for_a_lab_of_another_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "VARIANT_POLL", 0)
    labs = HeldFor("198.19.232.0/24", 2, instance="forwarding-of-someone-else")
    lifecycle.wait_for_variant(labs, VARIANT, Said())  # type: ignore[arg-type]
    assert labs.asked == 3
