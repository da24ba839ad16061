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

import json
import uuid
from typing import Any

from portlab.model.types import Match
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


def run_tool(run: ProbeRun, argv: list[str]) -> dict[str, Any]:
    """Run portlab-probe on the probe's source node; return its JSON answer."""
    timeout = run.probe.options.get("timeout")
    full = list(argv)
    if timeout:
        full += ["--timeout", str(timeout)]
    device = run.probe.options.get("device")
    if device:
        full += ["--device", str(device)]
    source_port = run.probe.options.get("source_port")
    if source_port:
        full += ["--source-port", str(source_port)]
    return tool_on(run, run.source, full)


def tool_on(run: ProbeRun, node: str, argv: list[str]) -> dict[str, Any]:
    """Run `portlab-probe ARGV` on any node of the instance; return its JSON answer, or raise
    CannotObserve when there is none to trust.

    Docker sometimes loses the whole output of a short `docker exec` (moby/moby#27289,
    docker/docker-py#2042; here about one exec in a hundred with 50 labs checked at once).
    The probe also saves its answer in a file, read with `cat` when the output is empty,
    so the verdict never depends on that race (nor is the probe sent twice).
    """
    saved = f"{ANSWERS}/{uuid.uuid4().hex}.json"
    result = run.nodes.exec(node, ["portlab-probe", "--save", saved, *argv])
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
    return data


def _answer(text: str) -> dict[str, Any] | None:
    """The JSON object on the last line of portlab-probe's output, if there is one."""
    try:
        data = json.loads(text.splitlines()[-1])
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
    addr = host_of(local) if local else run.source_address
    device = run.probe.options.get("device")
    if device:  # SO_BINDTODEVICE: this interface only, whatever the routes (a VPN's) say
        return f"{run.source} ({addr}), sent only through its interface {device}"
    return f"{run.source} ({addr})"


def describe_state(data: dict[str, Any]) -> str:
    state = data.get("state", "error")
    text = STATE_WORDS.get(state, state)
    if data.get("error") and state in ("error", "unreachable"):
        text += f" [{data['error']}]"
    return text


def judge_answer(run: ProbeRun, data: dict[str, Any], answer: dict[str, Any] | None,
                 what: str) -> tuple[Outcome, str, str]:
    """Judge `answers`, `token` and `seen_source` for a probe whose server reports back.

    `answer` is the portlab-serve payload (token, client, node) or None when
    nothing usable came back. Returns (outcome, got, why).
    """
    expect = run.probe.expect
    wants_answer = expect.get("answers", True)
    if answer is None:
        got = describe_state(data)
        if not wants_answer:
            return Outcome.PASS, got, ""
        return Outcome.FAIL, got, f"no {what} answer came back"
    client = str(answer.get("client", ""))
    client_ip = host_of(client)
    if "node" in answer or "client" in answer:
        got = (f"{what} answer from node '{answer.get('node', '?')}', which saw the client as "
               f"{client or '?'}")
    else:  # a real server (nginx, python3 -m http.server, ...) does not report back
        got = f"{what} answer from a server that is not a portlab stand-in (it names no client)"
    if not wants_answer:
        return Outcome.FAIL, got, f"expected no {what} answer here, but one came back"
    if expect.get("token") and answer.get("token") != run.context["token"]:
        return Outcome.FAIL, got + " (wrong token)", (
            "the answer did not carry this lab instance's token, so it did not come from the "
            "lab's own server")
    ref = expect.get("seen_source")
    if isinstance(ref, Match):
        wants = [run.address_of(v) for v in ref.values]
        if not Match(tuple(wants), ref.negate).holds(client_ip):
            named = " or ".join(f"{v} = {w}" if v != w else w
                                for v, w in zip(ref.values, wants, strict=True))
            return Outcome.FAIL, got, (f"the server saw the connection coming from {client_ip}, "
                                       + (f"and it should not be {named}" if ref.negate
                                          else f"expected one of {named}"))
    elif ref:
        want = run.address_of(ref)
        if client_ip != want:
            named = f"{ref} = {want}" if ref != want else want
            return Outcome.FAIL, got, (f"the server saw the connection coming from {client_ip}, "
                                       f"expected {named}")
    return Outcome.PASS, got, ""
