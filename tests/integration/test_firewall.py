"""The firewall lab, beyond the generic lab tests (test_labs.py): on one running instance.

What the generic tests cannot say: the feedback names what a scanner would
see (DROP: filtered, REJECT: closed); the grading is by behaviour, so an
nft ruleset passes as well as iptables rules; a rule that also drops the
server's connections to itself still counts sshd as running; and the admin
machine really logs in over SSH through the reference solution.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portlab import core, runtime
from portlab.runtime import run_checks
from tests.integration.helpers import lab_running

INSTANCE = "t-firewall-focus"
LAB = core.get_lab("firewall")


@pytest.fixture(scope="module")
def inst(node_image: str) -> Iterator[runtime.Instance]:
    with lab_running("firewall", INSTANCE) as running:
        yield running


@pytest.fixture
def server(inst: runtime.Instance) -> runtime.Instance:
    """The instance with an empty firewall on the server (every test starts from none)."""
    assert inst.exec("server", ["nft", "flush", "ruleset"]).exit_code == 0
    return inst


def addr(inst: runtime.Instance, ref: str) -> str:
    address: str = inst.binding(LAB).context["addr"][ref]
    return address


def on_server(inst: runtime.Instance, script: str) -> None:
    runtime.run_scripts(inst, LAB, {"server": script})


@pytest.mark.parametrize(("action", "word"), [
    ("DROP", "filtered"),
    ("REJECT", "closed"),
    ("REJECT --reject-with tcp-reset", "closed"),
])
def test_feedback_says_filtered_for_drop_and_closed_for_reject(server: runtime.Instance,
                                                               action: str, word: str) -> None:
    on_server(server, f"iptables -A INPUT -p tcp --dport 22 -j {action}")
    [result] = run_checks(LAB, server, only=["ssh-blocked"]).results
    assert result.passed
    for probe in result.probes:
        assert probe.data["state"] == word
        assert f"a scanner would say: {word}" in probe.got


def test_ssh_open_to_the_internet_fails_and_says_so(server: runtime.Instance) -> None:
    [result] = run_checks(LAB, server, only=["ssh-blocked"]).results
    assert not result.passed
    assert "(open)" in result.probes[0].got and result.seen == "open"
    assert "TCP handshake with sshd" in result.hint  # the hint for what was seen ...
    assert "--dport 22" in result.commands  # ... and the commands, given after a few tries


def test_a_rule_that_also_drops_the_server_itself_still_finds_sshd_running(
        server: runtime.Instance) -> None:
    on_server(server, "iptables -A INPUT -p tcp --dport 22 ! -s {{ addr['admin.wan'] }} -j DROP")
    own = server.exec("server", ["portlab-probe", "tcp", addr(server, "server.wan"), "22"])
    assert '"state": "filtered"' in own.stdout  # the server cannot reach its own sshd ...
    # ... and yet sshd runs, so only the stretch check fails.
    assert run_checks(LAB, server).failed_ids() == ["default-deny"]


def test_an_nft_ruleset_passes_like_iptables_rules(server: runtime.Instance) -> None:
    on_server(server, """nft -f - <<'EOF'
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    tcp dport 80 accept
    ip saddr {{ addr['admin.wan'] }} tcp dport 22 accept
  }
}
EOF""")
    report = run_checks(LAB, server)
    assert report.failed_ids() == [], [(r.id, [p.got for p in r.probes]) for r in report.results]


def test_admin_really_logs_in_over_ssh_through_the_solution(server: runtime.Instance) -> None:
    runtime.run_scripts(server, LAB, LAB.solution)
    password = LAB.params["admin_password"]
    login = server.exec("admin", ["sh", "-c", f"""
        printf '#!/bin/sh\\necho {password}\\n' > /tmp/askpass && chmod 700 /tmp/askpass
        SSH_ASKPASS=/tmp/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none setsid -w \\
          ssh -n -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \\
          -o ConnectTimeout=5 root@server hostname"""])
    assert (login.exit_code, login.stdout.strip()) == (0, "server"), login.stderr
