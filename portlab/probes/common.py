"""What probe kinds share: running portlab-probe on a node, and judging servers' answers.

The vocabulary is the one a port scanner uses, because that is what learners
will meet elsewhere: *open* (something answered), *closed* (a reset or ICMP
port-unreachable came back at once), *filtered* (nothing came back: dropped
on the way), *unreachable* (no route).

portlab-probe says `probe-error` (and exits non-zero) when it could not send
or listen at all; a missing tool, a crash, an answer Docker lost and garbled
output are the same case seen from here. Each raises CannotObserve: an
error, never "nothing came back".
"""

from __future__ import annotations

import ipaddress
import random
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from portlab.backend.base import ExecResult
from portlab.errors import printable
from portlab.model.probekinds import SELF
from portlab.model.types import Match
from portlab.node import answers
from portlab.probes.base import CannotObserve, Outcome, ProbeRun

STATE_WORDS = {
    "open": "the port answered (open)",
    "answered": "an answer came back",
    "closed": "the connection was refused at once (a scanner would say: closed)",
    "filtered": "nothing came back before the timeout: the packets were dropped on the way "
                "(a scanner would say: filtered)",
    "unreachable": "no route to that address from this node, or an ICMP \"host unreachable\" "
                   "or \"prohibited\" came back (a firewall's REJECT can send those)",
    "error": "something answered, but not what this probe speaks",
}

# The states each portlab-probe command may answer with; anything else is garbage.
SENDING = ("open", "closed", "filtered", "unreachable", "error")
STATES: dict[str, tuple[str, ...]] = {
    "tcp": SENDING, "http": SENDING, "minecraft": SENDING,
    "udp": ("answered", "closed", "filtered", "unreachable", "error"),
    "listening": ("listening", "not-listening"),
    "capture": ("capturing", "captured"),
}

ANSWERS = "/run/portlab/answers"  # on the node: portlab-probe --save writes its answer here
ANSWER_READS = 3  # tries at reading a saved answer when the output went missing
MISSING = (126, 127)  # a shell's "cannot execute" and "not found"

FRESH = "{fresh}"  # the runner puts in how to start this very instance afresh


NONCED = ("http", "minecraft", "udp")  # the kinds whose server echoes a nonce
# the expect keys judged on a portlab-serve answer (judge_answer)
ANSWER_KEYS = ("answers", "token", "seen_source", "served_by", "proxied")


# Fresh addresses held right now by a probe of this process, per source node: a lab's checks
# run at once, and two probes from one node must never pick the same address (the second
# could not add it, or the first would remove it from under the second).
_HELD: set[tuple[str, str]] = set()
_HELD_LOCK = threading.Lock()
FRESH_TOOL = "portlab-fresh"  # on every node: portlab/node/fresh.sh
FRESH_TAKEN, FRESH_NOT_ADDED = 75, 76  # its exit codes, with "portlab-fresh:" on stderr


class Fresh(NamedTuple):
    """An address picked for one probe, on the source node's interface."""
    iface: str
    address: str

    @property
    def prefix(self) -> list[str]:
        """What the probe's command is run under: the address added for that one command and
        removed after it, in the same exec."""
        return [FRESH_TOOL, self.iface, self.address]


def fresh_pick(job: ProbeRun, avoid: frozenset[str] = frozenset()) -> Fresh:
    """An address to send from that nobody has seen: a free host address of the source's
    network, picked now at random (a rule naming the probes' addresses does not hold it
    back), none of `avoid`."""
    table = {str(k): str(v) for k, v in dict(job.context.get("addr") or {}).items()}
    iface = next((ref.split(".", 1)[1] for ref, address in table.items()
                  if ref.startswith(f"{job.source}.") and address == job.source_address), "")
    nets = [ipaddress.ip_network(n) for n in dict(job.context.get("subnet") or {}).values()]
    net = next((n for n in nets if ipaddress.ip_address(job.source_address) in n), None)
    if not iface or net is None or net.version != 4:
        raise CannotObserve(f"no IPv4 network of {job.source} to send from a fresh address in",
                            "the lab's probe names a `from` node with an IPv4 interface")
    # nor the engine's gateway address (the backend keeps it at the top, Docker's default is
    # the bottom): the host never takes it, and no probe should send from it either
    used = set(table.values()) | {str(net.network_address + 1), str(net.broadcast_address - 1)}
    free = [str(a) for a in net.hosts() if str(a) not in used and str(a) not in avoid]
    if not free:
        raise CannotObserve(f"no free address left in {net} to send from",
                            "fewer probes from a fresh address at once, or a larger network")
    return Fresh(iface, random.SystemRandom().choice(free))


@contextmanager
def fresh_address(job: ProbeRun) -> Iterator[Fresh]:
    """With `fresh_source: true`: an address (fresh_pick) held for one probe, which runs its
    commands under `Fresh.prefix` (portlab-fresh adds the address to the source node for
    each command and removes it after). Only the source node is touched, never the
    learner's. Probes at once never hold the same one."""
    with _HELD_LOCK:
        held = frozenset(address for node, address in _HELD if node == job.source)
        fresh = fresh_pick(job, held)
        _HELD.add((job.source, fresh.address))
    try:
        yield fresh
    finally:
        with _HELD_LOCK:
            _HELD.discard((job.source, fresh.address))


def fresh_failed(job: ProbeRun, result: ExecResult, fresh: Fresh | None) -> None:
    """CannotObserve when portlab-fresh could not add the address (nothing was sent)."""
    if fresh is None or result.exit_code not in (FRESH_TAKEN, FRESH_NOT_ADDED) or \
            "portlab-fresh:" not in result.stderr:
        return
    said = printable(result.stderr.strip()[-200:])
    if result.exit_code == FRESH_TAKEN:
        raise CannotObserve(f"{job.source} holds the address picked for this probe already "
                            f"({said}): another check is sending from it right now",
                            "run `portlab check` again")
    raise CannotObserve(f"could not give {job.source} the address {fresh.address} ({said})",
                        f"the node needs `ip` and NET_ADMIN: {FRESH}")


def run_tool(run: ProbeRun, argv: list[str]) -> dict[str, Any]:
    """Run portlab-probe on the probe's source node; return its JSON answer. With
    `fresh_source: true`, from an address of its network picked for this one probe."""
    timeout = run.probe.options.get("timeout")
    full = list(argv)
    via = run.probe.options.get("via")
    if via:
        full += ["--via", run.address_of(str(via))]
    if timeout:
        full += ["--timeout", str(timeout)]
    device = run.probe.options.get("device")
    if device:
        full += ["--device", str(device)]
    source_port = run.probe.options.get("source_port")
    if source_port:
        full += ["--source-port", str(source_port)]
    if run.probe.options.get("fresh_source"):
        with fresh_address(run) as fresh:
            return tool_on(run, run.source, [*full, "--source", fresh.address], fresh)
    return tool_on(run, run.source, full)


def nonced(argv: list[str]) -> list[str]:
    """`argv` with a fresh nonce for the server to echo, where the kind takes one."""
    return [*argv, "--nonce", secrets.token_hex(8)] if argv[0] in NONCED else argv


def tool_on(run: ProbeRun, node: str, argv: list[str],
            fresh: Fresh | None = None) -> dict[str, Any]:
    """Run `portlab-probe ARGV` on any node of the instance (from the `fresh` address, held
    for it, if given); return its JSON answer, or raise CannotObserve when there is none to
    trust.

    Docker sometimes loses the whole output of a short `docker exec` (moby/moby#27289,
    docker/docker-py#2042; here about one exec in a hundred with 50 labs checked at once).
    The probe also saves its answer in a file, read with `cat` when the output is empty,
    so the verdict never depends on that race (nor is the probe sent twice).
    """
    saved = f"{ANSWERS}/{uuid.uuid4().hex}.json"
    argv = nonced(argv)
    result = run.nodes.exec(node, [*(fresh.prefix if fresh else ()),
                                   "portlab-probe", "--save", saved, *argv])  # no TTY: JSON
    fresh_failed(run, result, fresh)
    said = (result.stderr or result.stdout).strip()[-300:]
    if result.exit_code in MISSING:
        raise CannotObserve(
            f"portlab-probe could not be run on {node} (exit {result.exit_code}: {said})",
            f"the node's own tools are missing or broken: {FRESH}")
    text = result.stdout.strip()
    for _ in range(ANSWER_READS):
        if text or result.exit_code != 0:
            break
        text = run.nodes.exec(node, ["cat", saved]).stdout.strip()
    data = _answer(text)
    if data is not None and data.get("state") == "probe-error":
        raise CannotObserve(f"portlab-probe on {node} could not do its work: "
                            f"{data.get('error', 'no reason given')}",
                            _fix(node, data), data=data)
    if result.exit_code != 0:
        raise CannotObserve(f"portlab-probe failed on {node} (exit {result.exit_code}): "
                            f"{said or 'it said nothing'}",
                            f"run `portlab-probe {' '.join(argv)}` on {node} to see why, or "
                            f"{FRESH}")
    if data is None:
        if not text:
            raise CannotObserve(f"the answer of portlab-probe on {node} was lost (Docker "
                                "returned no output, and the answer it saved could not be "
                                "read either)", "run `portlab check` again")
        raise CannotObserve(f"portlab-probe on {node} printed something that is not its "
                            f"answer: {text[:200]!r}",
                            f"the node's own tools are broken: {FRESH}")
    allowed = STATES.get(argv[0])
    if allowed is not None and data.get("state") not in allowed:
        raise CannotObserve(f"portlab-probe on {node} answered with an unknown state "
                            f"{data.get('state')!r}", f"the node's own tools are broken: {FRESH}",
                            data=data)
    if "--nonce" in argv and data.get("nonce") != argv[argv.index("--nonce") + 1]:
        raise CannotObserve(f"portlab-probe on {node} did not send the nonce it was given",
                            f"the node's own tools are broken: {FRESH}", data=data)
    if not isinstance(data.get("answer", {}), dict):
        raise CannotObserve(f"portlab-probe on {node} gave an answer of the wrong shape",
                            f"the node's own tools are broken: {FRESH}", data=data)
    return data


MAX_ANSWER = 1 << 20  # characters of portlab-probe's answer read (a real one is a few KiB)


def _answer(text: str) -> dict[str, Any] | None:
    """The JSON object on the last line of portlab-probe's output, if there is one."""
    try:
        data = answers.loads(text.splitlines()[-1][-MAX_ANSWER:])
    except (ValueError, IndexError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("state"), str) else None


def _fix(node: str, data: dict[str, Any]) -> str:
    """What to do about a probe-error, by what the probe could not do."""
    if data.get("errno") == "ENODEV" and data.get("device"):
        return (f"{node} has no interface '{data['device']}' any more (was it renamed or "
                f"deleted?): `ip link` on {node} lists its interfaces; put it back, or {FRESH}")
    if data.get("errno") == "EADDRINUSE":
        return "another program holds the local port the probe wanted: run `portlab check` again"
    return f"run the probe by hand on {node} (`portlab-probe --help`) to see why, or {FRESH}"


def host_of(endpoint: str) -> str:
    """"10.0.0.2:5000" -> "10.0.0.2"; "[2001:db8:1::a]:5000" -> "2001:db8:1::a"."""
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def endpoint(run: ProbeRun) -> str:
    port = f":{run.probe.port}" if run.probe.port else ""
    target = f"[{run.target}]" if port and run.target and ":" in run.target else run.target
    if run.target_name != run.target:
        return f"{run.target_name} = {target}{port}"
    return f"{target}{port}"


def source_text(run: ProbeRun, data: dict[str, Any] | None = None) -> str:
    local = (data or {}).get("local", "")
    fresh = str((data or {}).get("source") or "")
    addr = host_of(local) if local else (fresh or run.source_address)
    if fresh:
        addr += ", an address picked for this probe"
    device = run.probe.options.get("device")
    if device:  # SO_BINDTODEVICE: this interface only, whatever the routes (a VPN's) say
        return f"{run.source} ({addr}), sent only through its interface {device}"
    return f"{run.source} ({addr})"


SILENT = ("the connection was accepted, but nothing this probe understands came back before "
          "the timeout: another kind of server listens there, or one that says nothing")


def describe_state(data: dict[str, Any]) -> str:
    """What came back, in words, each thing said once."""
    state = data.get("state", "error")
    said = data.get("error")
    if state == "error" and isinstance(said, str) and said.endswith("timed out"):
        return SILENT  # accepted, then silence: "something answered" would be untrue
    text = STATE_WORDS.get(state, state)
    if said and state in ("error", "unreachable"):
        text += f" [{said}]"
    return text


@dataclass(frozen=True)
class Heard:
    """What came back to a probe, as its kind read it: whether anything answered in the
    probe's protocol, and the fields of a portlab-serve answer in it (or None)."""

    answered: bool
    answer: dict[str, Any] | None = None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def a(what: str) -> str:
    """`what` with its article: "an HTTP answer", "a UDP answer"."""
    return f"{'an' if what[:1] in 'AEIOH' else 'a'} {what}"


def describe_answer(what: str, answer: dict[str, Any] | None) -> str:
    """An answer in words, before it is judged: who says they made it, whom they saw."""
    if answer is None:  # a real server (nginx, python3 -m http.server, ...) does not report
        return f"{a(what)} answer, from a server that does not say who it is"
    node = printable(_text(answer.get("node")) or "?")
    client = printable(_text(answer.get("client")) or "?")
    return f"{a(what)} answer from {node}, which saw the client as {client}"


def _served_by(run: ProbeRun) -> tuple[str, ...]:
    """The nodes whose servers may answer: `served_by`, else the node `to:` names."""
    want = run.probe.expect.get("served_by")
    if isinstance(want, Match):
        return want.values
    if isinstance(want, str):
        return (want,)
    node, dot, _ = run.target_name.partition(".")
    known = run.context.get("addr6" if run.probe.options.get("ipv6") else "addr") or {}
    return (node,) if dot and run.target_name in known else ()


def _authentic(run: ProbeRun, data: dict[str, Any], answer: dict[str, Any]) -> str:
    """Why the answer is not a genuine, fresh one of this instance's servers, or ""."""
    if not run.secret:
        raise CannotObserve("this instance has no secret to verify its servers' answers with "
                            "(it was started by an older portlab)", FRESH)
    node = _text(answer.get("node"))
    if "proof" not in answer:
        return (f"the answer names node '{printable(node)}' but carries no proof: it was not "
                "made by one of this lab's own servers (something else answers on that port)")
    if not node or not answers.valid(answers.node_key(run.secret, node), answer):
        return (f"the answer says it comes from '{printable(node) or '?'}', but its proof does "
                "not match what it says: it was made somewhere else, or rewritten on the way "
                "(a proxy or relay that edits answers), or it belongs to another lab instance")
    sent = _text(data.get("nonce"))
    if sent and _text(answer.get("nonce")) != sent:
        return ("the answer is genuine but old: it echoes another request's nonce, so it was "
                "recorded earlier and replayed")
    return ""


class Judgement(NamedTuple):
    """A judged answer: its outcome, what came back and why it fails, in words, and what was
    seen, in the words a lab's hints are chosen by (probes.base.SEEN; "" for the state's)."""

    outcome: Outcome
    got: str
    why: str
    seen: str = ""


def judge_answer(run: ProbeRun, data: dict[str, Any], heard: Heard, what: str) -> Judgement:
    """Judge `answers`, `token`, `served_by`, `seen_source` and `proxied` for a probe whose
    server reports back (portlab.node.answers). Returns (outcome, got, why).

    An answer that is judged by who made it (token, served_by, seen_source) must carry a
    valid proof under the key of the node it names, with this probe's nonce; it must come
    from a node of `served_by` (default: the node `to:` names); unless `proxied: true`, the
    server's connection must be the probe's own (the same sequence numbers, where both sides
    could read them), and where the server should have seen the probe's own address it must
    have seen its port too. Anything else is something in the server's place or in between."""
    outcome, got, why, seen = _judge(run, data, heard, what)
    return Judgement(outcome, got, why, seen)


def _judge(run: ProbeRun, data: dict[str, Any], heard: Heard,
           what: str) -> tuple[Outcome, str, str, str]:
    expect = run.probe.expect
    wants_answer = expect.get("answers", True)
    if not heard.answered:
        got = describe_state(data)
        if not wants_answer:
            return Outcome.PASS, got, "", ""
        return Outcome.FAIL, got, f"no {what} answer came back", ""
    answer = heard.answer
    got = describe_answer(what, answer)
    if not wants_answer:
        return Outcome.FAIL, got, f"expected no {what} answer here, but one came back", "open"
    if not (expect.get("token") or "seen_source" in expect or "served_by" in expect):
        return Outcome.PASS, got, "", ""
    if answer is None:
        return Outcome.FAIL, got, ("it carries no proof of who made it, so it did not come "
                                   "from this lab's own server: something else answers there"), \
            "wrong-answer"
    problem = _authentic(run, data, answer)
    if problem:
        return Outcome.FAIL, got + " (not genuine)", problem, "wrong-answer"
    node = _text(answer.get("node"))
    client = _text(answer.get("client"))
    got = f"{a(what)} answer from {printable(node)} (its proof checks out), which saw the " \
          f"client as {printable(client)}"
    servers = _served_by(run)
    if servers and node not in servers:
        wanted = " or ".join(servers)
        return Outcome.FAIL, got, (
            f"the answer came from {node}, not {wanted}: something on {node} answered in "
            f"{wanted}'s place (a server or proxy of its own), instead of passing the "
            "connection on to it"), "wrong-server"
    proxied = expect.get("proxied") is True
    local = _text(data.get("local"))
    mine, theirs = _text(data.get("seq")), _text(answer.get("seq"))
    if not proxied and mine and theirs and mine != theirs:
        return Outcome.FAIL, got, (
            f"{node}'s server answered, but over another TCP connection than the one "
            f"{run.source} opened (the sequence numbers differ): something in between accepted "
            "the connection and opened a new one to the server (a relay or proxy), which NAT "
            "and port forwarding never do"), "relayed"
    client_ip = host_of(client)
    ref = expect.get("seen_source")
    if isinstance(ref, Match):
        wants = [run.address_of(v) for v in ref.values]
        if not Match(tuple(wants), ref.negate).holds(client_ip):
            named = " or ".join(f"{v} = {w}" if v != w else w
                                for v, w in zip(ref.values, wants, strict=True))
            return Outcome.FAIL, got, (f"the server saw the connection coming from {client_ip}, "
                                       + (f"and it should not be {named}" if ref.negate
                                          else f"expected one of {named}")), "wrong-source"
    elif ref:
        if ref == SELF and not local:
            raise CannotObserve(f"portlab-probe on {run.source} did not say which address it "
                                "sent from", f"the node's own tools are broken: {FRESH}")
        want = host_of(local) if ref == SELF else run.address_of(ref)
        if client_ip != want:
            named = (f"{want}, the address {run.source} sent from" if ref == SELF
                     else f"{ref} = {want}" if ref != want else want)
            return Outcome.FAIL, got, (f"the server saw the connection coming from {client_ip}, "
                                       f"expected {named}"), "wrong-source"
        if not proxied and local and host_of(local) == want and client != local:
            return Outcome.FAIL, got, (
                f"the server saw the connection come from {client}, but {run.source} sent "
                f"from {local}: the same address with another port is a new connection made "
                "on the way (a relay), not the one that was sent"), "relayed"
    return Outcome.PASS, got, "", ""
