"""The rendered compose file: valid YAML, sealed networks, minimal privileges, exact values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from portlab import core
from portlab.backend.docker import models
from portlab.model.catalog import find
from portlab.model.context import Binding
from portlab.model.plan import Plan


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    lab = find("forwarding")
    plan = Plan(Binding(lab, "forwarding", lab.preferred_subnets(), "tok123"), "portlab/node:x")
    return yaml.safe_load(models.compose(plan))


def test_services_are_minimal_and_stop_fast(rendered: dict[str, Any]) -> None:
    assert rendered["version"] == "2.4"
    assert "name" not in rendered  # compose v1 rejects a top-level name
    for name, svc in rendered["services"].items():
        if name == models.SEAL_NAME:  # the one-shot seal, on the host's network
            assert svc["network_mode"] == "host" and svc["cap_add"] == ["NET_ADMIN"]
            continue
        assert svc["init"] is True
        assert sorted(svc["cap_add"]) == ["NET_ADMIN", "NET_RAW"]
        assert "privileged" not in svc
        assert svc["labels"]["portlab.node"] == name
        assert svc["labels"]["portlab.token"] == "tok123"
        assert "devices" not in svc  # the forwarding lab has no VPN


def test_networks_are_sealed_from_the_host(rendered: dict[str, Any]) -> None:
    for net in rendered["networks"].values():
        opts = net["driver_opts"]
        assert opts["com.docker.network.bridge.enable_ip_masquerade"] == "false"
        assert opts["com.docker.network.bridge.inhibit_ipv4"] == "true"
        assert net["ipam"]["config"][0]["gateway"].endswith(".254")
        assert "internal" not in net


def test_addresses_and_routes_come_from_the_lab(rendered: dict[str, Any]) -> None:
    import json

    router = rendered["services"]["router"]
    assert router["networks"]["internet"]["ipv4_address"] == "198.51.100.1"
    assert router["networks"]["home"]["ipv4_address"] == "10.0.0.1"
    assert router["sysctls"]["net.ipv4.ip_forward"] == "1"
    pc = json.loads(rendered["services"]["gamer-pc"]["environment"]["PORTLAB_NODE"])
    assert pc["routes"] == [{"to": "default", "via": "10.0.0.1"}]
    assert "--token tok123" in pc["services"][0]["run"]
    assert "router:198.51.100.1" in rendered["services"]["friend"]["extra_hosts"]


@pytest.mark.parametrize("text", ["plain", "it's \"quoted\"", "$HOME and ${X}", "line\nbreak",
                                  "tab\there", "ünïcode ✓ 🎮", "\u2028sep", "back\\slash", ""])
def test_yaml_quote_round_trips_through_compose_interpolation(text: str) -> None:
    quoted = models.yaml_quote(text)
    loaded = yaml.safe_load(f"v: {quoted}")["v"]
    assert loaded.replace("$$", "$") == text  # compose turns $$ back into $
    assert "$" not in text or "$$" in quoted


def test_render_works_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    from portlab.backend.docker import client as docker_api

    docker_api.reset()
    try:
        text = core.render_compose("forwarding")
    finally:
        docker_api.reset()
    assert "198.51.100.1" in text
