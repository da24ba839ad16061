"""The forwarding lab solved with nft alone, as its task allows: a complete nft solution passes.

The router's setup is iptables (on iptables-nft: the tables `ip filter` and `ip nat`). An nft
solution keeps its DNAT in a table of its own and adds its accept to `ip filter`'s FORWARD
chain, whose DROP policy an accept elsewhere cannot undo (the lab's wrong solution
`nft-own-table` shows that: "filtered").
"""

from __future__ import annotations

from portlab import core
from portlab.runtime import run_checks

NFT_ONLY = """
nft add table ip forward
nft add chain ip forward pre '{{ type nat hook prerouting priority -100; }}'
nft add rule ip forward pre iifname wan tcp dport {port} dnat to {pc}
nft add rule ip filter FORWARD iifname wan oifname lan ip daddr {pc} tcp dport {port} \\
  ct state new accept
"""


def test_a_complete_nft_only_solution_passes_every_check(start_lab) -> None:  # type: ignore[no-untyped-def]
    lab = core.get_lab("forwarding")
    inst = start_lab(lab, "t-forwarding-nft")
    pc = inst.binding(lab).address("gamer-pc.lan")
    script = NFT_ONLY.format(port=lab.params["game_port"], pc=pc)
    done = inst.exec("router", ["sh", "-ec", script])
    assert done.exit_code == 0, done.stderr
    assert "iptables" not in script
    report = run_checks(lab, inst)
    assert report.passed, [(r.id, r.outcome, [p.got for p in r.probes]) for r in report.results]
