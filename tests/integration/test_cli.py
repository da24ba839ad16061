"""The CLI end to end on real containers, as a learner runs it."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import labelled, portlab

INSTANCE = "cli"


@pytest.fixture(scope="module")
def lab_up(node_image: str):
    portlab("up", "forwarding", "--instance", INSTANCE, check_rc=0)
    yield INSTANCE
    portlab("down", "--instance", INSTANCE)


def test_up_prints_nodes_and_next_steps(node_image: str) -> None:
    proc = portlab("up", "forwarding", "--instance", "cli-up", check_rc=0)
    try:
        assert "is up as instance 'cli-up'" in proc.stdout
        assert "router     wan" in proc.stdout and "portlab check" in proc.stdout
        assert "waiting until every node is ready" in proc.stderr
        which = portlab("shell", "--instance", "cli-up", check_rc=2)
        assert "which node? The nodes of lab 'forwarding': router" in which.stderr
        assert "you work here" in which.stderr and "portlab shell router" in which.stderr
        inside = portlab("exec", "--instance", "cli-up", "router", "--", "portlab", "check",
                         check_rc=127)  # typed in a node's shell: where to run it instead
        assert "portlab runs on your own computer, not on a lab node" in inside.stderr
    finally:
        down = portlab("down", "--instance", "cli-up", check_rc=0)
    assert "Removed lab 'forwarding' (instance cli-up): 4 containers and 2 networks" in \
        down.stdout
    assert labelled("cli-up") == {"containers": [], "networks": []}


def test_second_up_is_refused_and_changes_nothing(lab_up: str) -> None:
    before = sorted(c.id for c in labelled(lab_up)["containers"])
    proc = portlab("up", "forwarding", "--instance", lab_up)
    assert proc.returncode == 2
    assert "already up" in proc.stderr and "nothing was changed" in proc.stderr
    assert sorted(c.id for c in labelled(lab_up)["containers"]) == before


def test_status_json_describes_nodes_and_interfaces(lab_up: str) -> None:
    proc = portlab("status", "--json", "--instance", lab_up, check_rc=0)
    data = json.loads(proc.stdout)
    assert data["format"] == 1
    (inst,) = data["instances"]
    assert inst["lab"] == "forwarding" and inst["state"] == "running"
    assert inst["image"].startswith("portlab/node:")
    nodes = {n["name"]: n for n in inst["nodes"]}
    assert sorted(nodes) == ["friend", "gamer-pc", "router", "tv"]
    assert [i["name"] for i in nodes["router"]["interfaces"]] == ["wan", "lan"]
    assert all(n["state"] == "running" and n["wireguard"] is None for n in nodes.values())
    subnets = {n["name"]: n["subnet"] for n in inst["networks"]}
    assert sorted(subnets) == ["home", "internet"]


def test_interfaces_have_the_lab_names_and_routes_avoid_the_host(lab_up: str) -> None:
    links = portlab("exec", "router", "--instance", lab_up, "--", "ip", "-br", "link",
                    check_rc=0).stdout
    names = sorted(line.split()[0].split("@")[0] for line in links.splitlines())
    assert names == ["lan", "lo", "wan"]
    pc_routes = portlab("exec", "gamer-pc", "--instance", lab_up, "--", "ip", "route",
                        check_rc=0).stdout
    status = json.loads(portlab("status", "--json", "--instance", lab_up).stdout)
    router = next(n for n in status["instances"][0]["nodes"] if n["name"] == "router")
    router_lan = next(i["address"] for i in router["interfaces"] if i["name"] == "lan")
    assert f"default via {router_lan.split('/')[0]} dev lan" in pc_routes
    friend_routes = portlab("exec", "friend", "--instance", lab_up, "--", "ip", "route",
                            check_rc=0).stdout
    assert "default" not in friend_routes


def test_nodes_cannot_reach_the_docker_host(lab_up: str) -> None:
    """The lab is sealed: the host's docker0 address and the lab bridges' gateways are dead ends."""
    status = json.loads(portlab("status", "--json", "--instance", lab_up).stdout)
    gateways = []
    for net in status["instances"][0]["networks"]:
        import ipaddress
        subnet = ipaddress.ip_network(net["subnet"])
        gateways.append(str(subnet.broadcast_address - 1))
    for node in ("friend", "router", "gamer-pc"):
        for target in ["172.17.0.1", *gateways]:
            proc = portlab("exec", node, "--instance", lab_up, "--", "ping", "-c1", "-W1",
                           target)
            assert proc.returncode != 0, f"{node} reached {target}"


def test_containers_are_not_privileged_and_have_only_network_caps(lab_up: str) -> None:
    for container in labelled(lab_up)["containers"]:
        container.reload()
        host = container.attrs["HostConfig"]
        assert host["Privileged"] is False
        assert sorted(host["CapAdd"]) == ["NET_ADMIN", "NET_RAW"]
        assert host["Init"] is True


def test_exec_passes_output_and_exit_code_through(lab_up: str) -> None:
    proc = portlab("exec", "router", "--instance", lab_up, "--", "sh", "-c", "echo hi; exit 7")
    assert proc.returncode == 7 and proc.stdout.strip() == "hi"


def test_unknown_node_is_a_clear_error(lab_up: str) -> None:
    proc = portlab("exec", "toaster", "--instance", lab_up, "--", "true")
    assert proc.returncode == 2
    assert "has no node 'toaster'" in proc.stderr and "router" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_fails_then_solve_makes_it_pass(lab_up: str, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}  # the learner's solved labs
    proc = portlab("check", "--instance", lab_up, "--junit", str(junit), env=env)
    assert proc.returncode == 1
    assert "FAIL  reach" in proc.stdout and "PASS  lan-internet" in proc.stdout
    assert "sent:  Minecraft status ping" in proc.stdout and "hint:" in proc.stdout
    # the hint answers what was seen (refused); the commands wait for the third try
    assert "Refused" in proc.stdout and "--to-destination" not in proc.stdout
    assert "after 2 more tries" in " ".join(proc.stdout.split())
    assert "nat PREROUTING (policy ACCEPT)" in proc.stdout  # the router's rules, shown
    assert 'failures="2"' in junit.read_text()
    data = json.loads(portlab("check", "--json", "--instance", lab_up, env=env).stdout)
    assert [c["id"] for c in data["checks"] if not c["passed"]] == ["reach", "real-source"]
    assert data["checks"][0]["seen"] == "refused" and data["checks"][0]["commands"] is None
    record = tmp_path / "state" / "portlab" / "progress.json"  # it counts the tries ...
    assert "forwarding" not in json.loads(record.read_text()).get("solved", {})  # not solved
    assert json.loads(record.read_text())["tries"][f"forwarding/{lab_up}"]["checks"] == {
        "reach": 2, "real-source": 2, "only-game-port": 0, "lan-internet": 0}
    proc = portlab("check", "--instance", lab_up, env=env)
    assert "try:   iptables -t nat -A PREROUTING" in proc.stdout  # the third: the commands
    portlab("solve", "forwarding", "--instance", lab_up, check_rc=0)
    proc = portlab("check", "--instance", lab_up, env=env)
    assert proc.returncode == 0, proc.stdout
    assert "4 of 4 checks passed" in proc.stdout and "portlab next" in proc.stdout
    # a passed check is remembered: `portlab list` marks the lab, `portlab next` moves on
    listed = portlab("list", env=env, check_rc=0).stdout.splitlines()
    assert [ln.split()[:2] for ln in listed if ln.split()[:1] == ["forwarding"]] == [
        ["forwarding", "solved"]]
    assert "Next: forwarding" not in portlab("next", env=env, check_rc=0).stdout


def test_down_with_nothing_up_is_harmless(docker_ready: None) -> None:
    proc = portlab("down", "--instance", "never-started")
    assert proc.returncode in (0, 2)
    assert "Traceback" not in proc.stderr
