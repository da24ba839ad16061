"""The learner's own iptables rules, read-only, and which of them a probe's packets matched.

A failing check whose lab names chains to explain it (`explain:`) shows them
beside its verdict: the node's rules in order, with their counters, and the
ones that the check's failing probe matched when it was sent once more. The
verdict stays by traffic; this only says why, from the configuration. It is
read with `iptables-save -c` (`ip6tables-save -c` for a chain named
"ip6 TABLE CHAIN"), which lists the rules of iptables (legacy or nft);
rules made with `nft` in tables of one's own are not among them.
Everything read is the node's output: bounded and made printable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from portlab.backend.base import NodeRunner
from portlab.errors import PortlabError, printable
from portlab.model.types import Explain

MAX_OUTPUT = 256 * 1024  # characters of iptables-save read
MAX_RULES = 30  # rules shown of one chain
MAX_RULE = 200  # characters of one rule shown
COUNTED = re.compile(r"^\[(\d{1,20}):(\d{1,20})\] -A (\S{1,64}) (.*)$")
POLICY = re.compile(r"^:(\S{1,64}) (\S{1,16}) \[(\d{1,20}):(\d{1,20})\]$")


@dataclass(frozen=True)
class Rule:
    number: int  # its place in the chain (`iptables -D CHAIN NUMBER` removes it)
    text: str  # as iptables-save prints it, without the counters
    packets: int  # what it had matched before
    matched: int  # packets it matched while the probe was sent again


@dataclass(frozen=True)
class Chain:
    table: str
    name: str
    policy: str  # ACCEPT, DROP, or "-" for a chain of one's own
    policy_matched: int  # packets the policy decided while the probe was sent again
    rules: tuple[Rule, ...]
    more: int = 0  # rules not shown


@dataclass(frozen=True)
class Explanation:
    node: str
    chains: tuple[Chain, ...]
    problem: str = ""  # why the rules could not be read ("" when they were)


Counters = dict[str, tuple[str, int, list[tuple[str, int]]]]  # chain -> policy, its count, rules


def parse(text: str) -> Counters:
    """`iptables-save -c -t TABLE`'s chains: policy, its packets, and (rule, packets) in order."""
    chains: Counters = {}
    for line in text[:MAX_OUTPUT].splitlines():
        policy = POLICY.match(line)
        if policy:
            chains[policy[1]] = (policy[2], int(policy[3]), [])
            continue
        rule = COUNTED.match(line)
        if rule and rule[3] in chains:
            chains[rule[3]][2].append((f"-A {rule[3]} {rule[4]}", int(rule[1])))
    return chains


def explain(spec: Explain, nodes: NodeRunner, again: Callable[[], object]) -> Explanation:
    """The chains of `spec`, read before and after `again()` sends the failing probe once more;
    a problem, never an exception, when they cannot be read (this explains, it does not judge)."""
    tables = list(dict.fromkeys(table for table, _ in spec.chains))
    try:
        before = {t: _read(nodes, spec.node, t) for t in tables}
        again()
        after = {t: _read(nodes, spec.node, t) for t in tables}
    except (PortlabError, _Unread) as exc:
        return Explanation(spec.node, (), printable(str(exc))[:300])
    chains = []
    for table, name in spec.chains:
        old, new = before[table].get(name), after[table].get(name)
        if new is None:
            continue  # a chain the learner deleted, or never made
        policy, count, rules = new
        old_rules = old[2] if old else []
        shown = []
        for i, (text, packets) in enumerate(rules[:MAX_RULES], start=1):
            earlier = old_rules[i - 1][1] if i <= len(old_rules) and \
                old_rules[i - 1][0] == text else packets
            shown.append(Rule(i, printable(text)[:MAX_RULE], earlier, max(0, packets - earlier)))
        was = old[1] if old else count
        chains.append(Chain(table, name, policy, max(0, count - was), tuple(shown),
                            max(0, len(rules) - MAX_RULES)))
    return Explanation(spec.node, tuple(chains))


class _Unread(Exception):
    pass


def tool(table: str) -> str:
    """The command for a table: "ip6 filter" is ip6tables', the others iptables'."""
    return "ip6tables" if table.startswith("ip6 ") else "iptables"


def _read(nodes: NodeRunner, node: str, table: str) -> Counters:
    result = nodes.exec(node, [f"{tool(table)}-save", "-c", "-t", table.split()[-1]])
    if result.exit_code != 0:
        said = printable((result.stderr or result.stdout).strip())[-200:]
        raise _Unread(f"{tool(table)}-save on {node} failed (exit {result.exit_code}): {said}")
    return parse(result.stdout)
