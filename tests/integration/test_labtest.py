"""`portlab test LAB` on a trainer's own lab (PORTLAB_LABS_PATH), as a trainer runs it.

The shipped labs go through the same code in test_labs.py; here the command
itself: its table, its exit codes, a mis-declared lab caught, nothing left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import labs_path, portlab
from tests.unit.labfiles import minimal


def trainer_lab(name: str, drop_declared: list[str]) -> dict[str, Any]:
    """A web server to keep and a forgotten one to stop; two wrong ways to do it."""
    data = minimal()
    data["name"] = name
    data["networks"]["net"]["prefer"] = "198.18.201.0/24"
    data["nodes"]["a"]["services"].append(
        {"name": "old", "run": "portlab-serve tcp --port 8080 --token {{ token }} --name old",
         "ready": {"tcp": 8080}})
    data["checks"].append({"id": "old-gone", "title": "the old server is stopped: refused",
                           "probes": [{"kind": "tcp", "from": "b", "to": "a.wan", "port": 8080,
                                       "expect": {"state": "closed"}}]})
    data["solution"] = {"a": "pkill -x old"}
    data["untouched"] = {"fails": ["old-gone"]}
    data["wrong_solutions"] = [
        {"name": "kill-both", "description": "stops every stand-in server",
         "apply": {"a": "pkill -x old; pkill -x serve-http"}, "fails": ["web"]},
        {"name": "drop-it", "description": "firewalls the old port instead of stopping it",
         "apply": {"a": "iptables -A INPUT -p tcp --dport 8080 -j DROP"},
         "fails": drop_declared},
    ]
    return data


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("labs")
    return labs_path(root, trainer_lab("mine", ["old-gone"]),
                     trainer_lab("misdeclared", ["web"]))


def test_a_right_lab_passes_with_a_table_of_its_cases(node_image: str,
                                                       env: dict[str, str]) -> None:
    proc = portlab("test", "mine", env=env, timeout=600)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Lab 'mine': 6 cases, each on a fresh instance, ")
    rows = [ln.split() for ln in lines[2:6]]
    assert [r[0] for r in rows] == ["untouched", "solution", "wrong:", "wrong:"]
    assert all(ln.endswith("as declared") for ln in lines[2:6]), proc.stdout
    # the mutants: the web server stopped is caught; the old one the solution stops itself
    mutants = {ln.split()[0]: ln for ln in lines[lines.index("Mutants: the solution plus one "
                                                            "mistake each; a check must fail "
                                                            "(killed)") + 2:][:2]}
    assert mutants["stopped@a/web"].endswith("killed"), proc.stdout
    assert mutants["stopped@a/old"].endswith("does not apply"), proc.stdout
    assert "4 of 4 cases as declared, 2 of 2 mutants killed or declared to survive" in \
        proc.stdout
    assert "testing lab 'mine': 6 cases" in proc.stderr  # progress, on stderr
    assert not [c for c in labelled_instances() if c.startswith("test-mine")]


def labelled_instances() -> list[str]:
    from portlab import runtime

    return sorted(runtime.instances())


def test_a_misdeclared_wrong_solution_is_a_mismatch_naming_both_sides(
        node_image: str, env: dict[str, str]) -> None:
    proc = portlab("test", "misdeclared", "--case", "drop-it", "--json", env=env, timeout=600)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    [case] = json.loads(proc.stdout)["cases"]
    assert case["case"] == "wrong: drop-it" and not case["ok"]
    assert case["declared"] == ["web"] and case["failed"] == ["old-gone"]
    table = portlab("test", "misdeclared", "--case", "drop-it", env=env, timeout=600)
    assert table.returncode == 1
    assert "MISMATCH" in table.stdout
    assert "failed, but not declared: old-gone" in table.stdout
    assert "declared to fail, but passed: web" in table.stdout
    assert "0 of 1 cases as declared" in table.stdout
    assert not [c for c in labelled_instances() if c.startswith("test-misdeclared")]


def test_an_unknown_case_is_refused_before_anything_starts(env: dict[str, str]) -> None:
    proc = portlab("test", "mine", "--case", "nope", env=env)
    assert proc.returncode == 2
    assert "lab 'mine' has no case 'nope'" in proc.stderr
    assert "untouched, solution, kill-both, drop-it" in proc.stderr
