"""Start order between nodes (`after:`), on real containers.

Node b's setup connects to a's web server once, at once, and fails if it is
not there yet; a's server takes a few seconds to start. With `after: [a]`
b waits for a to be ready and the lab comes up; without, the same lab fails
to start, which shows the order is what makes the difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portlab import runtime
from tests.integration.helpers import labs_path, portlab
from tests.unit.labfiles import minimal

CONNECT_ONCE = ("python3 -c \"import socket; socket.create_connection(('a.wan', 80), 3)\" "
                "|| { echo 'a is not ready yet' >&2; exit 1; }")


def ordered_lab(name: str, after: bool) -> dict[str, Any]:
    data = minimal()
    data["name"] = name
    data["networks"]["net"]["prefer"] = "198.18.202.0/24"
    web = data["nodes"]["a"]["services"][0]
    web["run"] = "sleep 3; exec " + web["run"]
    data["nodes"]["b"]["setup"] = CONNECT_ONCE
    if after:
        data["nodes"]["b"]["after"] = ["a"]
    return data


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("labs")
    return labs_path(root, ordered_lab("in-order", True), ordered_lab("no-order", False))


def test_a_node_after_another_starts_once_that_one_is_ready(node_image: str,
                                                            env: dict[str, str]) -> None:
    proc = portlab("up", "in-order", env=env)
    try:
        assert proc.returncode == 0, proc.stderr
        assert portlab("check", "in-order", env=env).returncode == 0
    finally:
        portlab("down", "in-order", env=env)
    assert "in-order" not in runtime.instances()


def test_without_the_order_the_same_lab_fails_to_start(node_image: str,
                                                      env: dict[str, str]) -> None:
    proc = portlab("up", "no-order", env=env)
    try:
        assert proc.returncode == 3, (proc.stdout, proc.stderr)
        assert "a is not ready yet" in proc.stderr
    finally:
        portlab("down", "no-order", env=env)
    assert "no-order" not in runtime.instances()
