"""Every shipped lab, run with other params, on real containers, as a user runs it.

`portlab up LAB --param ...` (game_port 30000, wg_port 41000, ssh_port 2222, ...): the
servers listen on the new ports, the untouched lab fails exactly the checks it declares
(fails, not errors), the reference solution passes every check, and `status` and `show`
of the running instance say the params it runs with. Each command is a new process: the
params reach it from the instance's labels, not from the command line.
"""

from __future__ import annotations

import json

import pytest

from portlab import core
from tests.integration.helpers import concurrently, labelled, portlab
from tests.unit.test_params import VARIANTS


@pytest.fixture(scope="module")
def with_other_params(node_image: str) -> dict[str, BaseException | None]:
    """Every lab's run below, side by side (two per core); each test reports its own."""
    return concurrently(run_with_other_params, sorted(VARIANTS))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_lab_with_other_params_fails_untouched_and_passes_solved(
        name: str, with_other_params: dict[str, BaseException | None]) -> None:
    problem = with_other_params[name]
    if problem is not None:
        raise problem


def run_with_other_params(name: str) -> None:
    lab = core.get_lab(name)
    variant = VARIANTS[name]
    instance = f"t-var-{name}"
    flags = [arg for k, v in variant.items() for arg in ("--param", f"{k}={v}")]
    portlab("up", name, "--instance", instance, *flags, check_rc=0)
    try:
        status = json.loads(portlab("status", "--json", "--instance", instance,
                                    check_rc=0).stdout)
        assert status["instances"][0]["params"] == {**lab.params, **variant}

        untouched = portlab("check", "--instance", instance, "--json")
        assert untouched.returncode == 1, (untouched.stdout, untouched.stderr)
        report = json.loads(untouched.stdout)
        assert [c["id"] for c in report["checks"] if c["status"] == "fail"] == \
            list(lab.untouched_fails)
        assert [c["id"] for c in report["checks"] if c["status"] == "error"] == []

        portlab("solve", name, "--instance", instance, check_rc=0)
        solved = portlab("check", "--instance", instance)
        assert solved.returncode == 0, solved.stdout

        shown = portlab("show", name, "--instance", instance, check_rc=0).stdout
        for key, value in variant.items():  # a mystery param stays one, in a variant too
            want = f"{key}=?" if key in lab.hidden_params else f"{key}={value}"
            assert want in shown.splitlines()[2]
    finally:
        portlab("down", "--instance", instance, check_rc=0)
    assert labelled(instance) == {"containers": [], "networks": []}


def test_the_servers_really_listen_on_the_new_ports(node_image: str) -> None:
    instance = "t-var-ports"
    portlab("up", "forwarding", "--instance", instance, "--param", "game_port=30000",
            check_rc=0)
    try:
        ss = portlab("exec", "gamer-pc", "--instance", instance, "--", "ss", "-Htln",
                     check_rc=0).stdout
        ports = {line.split()[3].rsplit(":", 1)[1] for line in ss.splitlines() if line}
        assert "30000" in ports and "25565" not in ports
    finally:
        portlab("down", "--instance", instance, check_rc=0)
