"""Params everywhere: a lab loaded with other params says and does exactly those, no Docker.

The shipped labs name their ports (and the laptop's tunnel host) as params; every place
that uses one (the story, tasks, hints, servers, ready ports, checks, the solution) is a
template over it. Loaded with other values, nothing of the old ones is left anywhere a
learner reads or a node runs. Overrides are checked like the lab file is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from portlab import core
from portlab.backend.docker import models
from portlab.errors import LabError, UsageError
from portlab.model import params
from portlab.model.context import Binding
from portlab.model.plan import Plan
from portlab.model.types import Lab
from portlab.views import brief
from tests.unit.labfiles import minimal, parse_data

ROOT = Path(__file__).resolve().parents[2]

# The values the tests give each shipped lab (test_params in the integration tests runs them).
VARIANTS: dict[str, dict[str, Any]] = {
    "forwarding": {"game_port": 30000, "photos_port": 8081},
    "vpn": {"wg_port": 41000, "web_port": 8080, "laptop_host": 7},
    "firewall": {"ssh_port": 2222, "web_port": 8080, "db_port": 5432,
                 "admin_password": "s3cret"},
    "hairpin": {"web_port": 9090},
    "nat": {"web_port": 8081, "service_port": 8200},
    "tcp-udp": {"port": 6000, "quiet_port": 3478},
    "scan": {"web_port": 8080, "ssh_port": 23456, "db_port": 5432, "old_ssh_port": 2222,
             "closed_port": 8443, "udp_port": 6000, "admin_password": "s3cret"},
    "ports": {"notes_port": 5555, "old_port": 9444, "web_port": 8888, "low_port": 81},
    "reverse-proxy": {"http_port": 8000, "blog_port": 8180, "shop_port": 8181,
                      "blog_host": "journal.example", "shop_host": "store.example"},
    "ssh-tunnel": {"ssh_port": 2222, "web_port": 8081, "local_port": 18080, "laptop_port": 3333,
                   "remote_port": 40404},
    "vpn-privacy": {"wg_port": 43210, "web_port": 8080, "share_port": 2049, "ssh_port": 2222,
                    "laptop_host": 7},
    "vpn-portforward": {"game_port": 25600, "panel_port": 8200, "wg_port": 41000},
    "ipv6": {"photo_port": 8081, "admin_port": 5050, "dev_port": 4200, "media_port": 1901},
}
# A default that something else in the lab has too, on purpose: not a stale use of the param.
SHARED = {("firewall", "web_port"): "the software mirror's own web server is on port 80 too"}


def test_every_shipped_lab_has_a_variant_here() -> None:
    assert sorted(VARIANTS) == sorted(lab.name for lab in core.labs())
    for lab in core.labs():
        assert set(VARIANTS[lab.name]) == set(lab.params), lab.name


def everything(lab: Lab) -> str:
    """All a learner reads and a node runs, rendered: brief, compose file, scripts, checks."""
    binding = Binding(lab, lab.name, lab.preferred_subnets(), "tok")
    shown = brief.show(binding, color=False)  # less its header, which names the lab's own values
    parts = ["\n".join(ln for ln in shown.splitlines() if not ln.startswith("params: ")),
             models.compose(Plan(binding, "portlab/node:x")).replace("$$", "$")]
    for node, script in lab.solution.items():
        parts.append(binding.render(("solution", node), script))
    for i, wrong in enumerate(lab.wrong_solutions):
        parts += [binding.render(("wrong_solutions", i, "apply", n), s)
                  for n, s in wrong.apply.items()]
    for i, check in enumerate(lab.checks):
        parts += [binding.render(("checks", i, "hint", key), text)
                  for key, text in check.hint.texts()]
        for probe in check.probes:
            parts.append(json.dumps([probe.port, probe.options, probe.expect], default=str))
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_lab_with_other_params_keeps_none_of_the_old_values(name: str) -> None:
    lab = core.get_lab(name, VARIANTS[name])
    assert lab.params == {**lab.defaults, **VARIANTS[name]}
    assert lab.changed_params() == VARIANTS[name]
    text = everything(lab)
    for param, new in VARIANTS[name].items():
        old = lab.defaults[param]
        if (name, param) in SHARED:
            continue
        if param == "laptop_host":  # a host number: look for the address it made
            old_ip = Binding.preview(core.get_lab(name)).context["ip"]("tunnel", old)
            assert old_ip not in text
            continue
        assert str(new) in text
        if isinstance(old, str):
            continue  # a word like "portlab" is everywhere; that the new one is in is enough
        pattern = rf"(?<![\d.]){old}(?!\d)"
        stale = [text[max(0, m.start() - 60):m.end() + 20] for m in re.finditer(pattern, text)]
        assert not stale, f"{param}: the old value {old} is still in: {stale}"


def test_checks_and_servers_use_the_params() -> None:
    lab = core.get_lab("forwarding", {"game_port": 30000})
    assert {p.port for p in lab.check("reach").probes} == {30000}
    pc = lab.node("gamer-pc")
    assert pc is not None and pc.services[0].ready_tcp == 30000
    vpn = core.get_lab("vpn", {"wg_port": 41000})
    capture = vpn.check("isp-sees-only-wireguard").probes[0]
    assert capture.expect["tunnel_port"] == 41000


def test_overrides_take_the_params_own_type() -> None:
    assert params.coerce("l", "p", 80, "8080") == 8080
    assert params.coerce("l", "p", 1.5, "2") == 2.0
    assert params.coerce("l", "p", True, "no") is False
    assert params.coerce("l", "p", "web", 80) == "80"
    with pytest.raises(UsageError) as info:
        params.coerce("forwarding", "game_port", 25565, "lots")
    assert str(info.value) == ("param 'game_port' of lab 'forwarding' is a whole number (the "
                               "lab's own value is 25565); 'lots' is not")


def test_an_unknown_param_names_the_ones_there_are() -> None:
    with pytest.raises(UsageError) as info:
        core.get_lab("forwarding", {"gameport": 1})
    assert "lab 'forwarding' has no param 'gameport'. Its params: game_port, photos_port" in \
        str(info.value)


def test_an_override_out_of_range_names_the_file_line_key_and_the_override() -> None:
    with pytest.raises(LabError) as info:
        core.get_lab("forwarding", {"game_port": 70000})
    err = info.value
    assert err.file.endswith("forwarding/lab.yaml") and err.line
    assert "got 70000 (from '{{ params.game_port }}', with game_port=70000)" in err.detail


def test_assignments_from_a_command_line() -> None:
    assert params.assignments(["a=1", "b_c=x=y"]) == {"a": "1", "b_c": "x=y"}
    for bad in ("a", "=1", "A=1", "a b=1"):
        with pytest.raises(UsageError):
            params.assignments([bad])


def test_numbers_may_be_templates_in_a_trainers_lab() -> None:
    data = minimal()
    data["params"] = {"port": 8080, "host": 5, "size": 26, "wait": 2.5}
    data["networks"]["net"]["prefix"] = "{{ params.size }}"
    data["networks"]["net"]["prefer"] = "198.51.100.0/26"
    data["nodes"]["a"]["interfaces"]["wan"]["host"] = "{{ params.host }}"
    data["nodes"]["a"]["services"][0]["ready"] = {"tcp": "{{ params.port }}"}
    probe = data["checks"][0]["probes"][0]
    probe.update(port="{{ params.port }}", timeout="{{ params.wait }}")
    lab = parse_data(data)
    assert lab.networks[0].prefix == 26
    assert lab.nodes[0].interfaces[0].host == 5 and lab.nodes[0].services[0].ready_tcp == 8080
    assert lab.checks[0].probes[0].port == 8080
    assert lab.checks[0].probes[0].options["timeout"] == 2.5


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                               "DOCKER_HOST": "unix:///nonexistent/docker.sock"})


def test_show_and_render_take_params() -> None:
    shown = run("show", "forwarding", "--param", "game_port=30000")
    assert shown.returncode == 0, shown.stderr
    assert ("params: game_port=30000 (the lab's own: 25565), photos_port=8080\n"
            in shown.stdout)
    assert "TCP port 30000" in shown.stdout and "25565" not in shown.stdout.split("\n", 3)[3]
    rendered = run("render", "forwarding", "-p", "game_port=30000")
    assert rendered.returncode == 0 and "--port 30000" in rendered.stdout
    bad = run("show", "forwarding", "--param", "game_port=lots")
    assert bad.returncode == 2 and "is a whole number" in bad.stderr
