"""What probe kinds share: running portlab-probe on a node, and judging answers.

The vocabulary is the one a port scanner uses, because that is what learners
will meet elsewhere: *open* (something answered), *closed* (a reset or ICMP
port-unreachable came back at once), *filtered* (nothing came back: dropped
on the way), *unreachable* (no route).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from portlab.checks import ProbeRun

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

# expect keys shared by the kinds that talk to portlab-serve servers
ANSWER_EXPECTS: dict[str, Any] = {"answers": bool, "token": bool, "seen_source": str}


def run_tool(run: ProbeRun, argv: list[str]) -> dict[str, Any]:
    """Run portlab-probe on the probe's source node; return its JSON answer."""
    timeout = run.probe.options.get("timeout")
    full = list(argv)
    if timeout:
        full += ["--timeout", str(timeout)]
    device = run.probe.options.get("device")
    if device:
        full += ["--device", str(device)]
    return tool_on(run, run.source, full)


ANSWERS = "/run/portlab/answers"  # on the node: portlab-probe --save writes its answer here
ANSWER_READS = 3  # tries at reading a saved answer when the output went missing


def tool_on(run: ProbeRun, node: str, argv: list[str]) -> dict[str, Any]:
    """Run `portlab-probe ARGV` on any node of the instance; return its JSON answer.

    Docker sometimes loses the whole output of a short `docker exec` (moby/moby#27289,
    docker/docker-py#2042; here about one exec in a hundred with 50 labs checked at once).
    The probe also saves its answer in a file, read with `cat` when the output is empty,
    so the verdict never depends on that race (nor is the probe sent twice).
    """
    saved = f"{ANSWERS}/{uuid.uuid4().hex}.json"
    result = run.exec(node, ["portlab-probe", "--save", saved, *argv])
    if result.exit_code != 0:
        return {"state": "error", "error": f"portlab-probe failed on {node}: "
                f"{(result.stderr or result.stdout).strip()[-300:]}"}
    text = result.stdout.strip()
    for _ in range(ANSWER_READS):
        if text:
            break
        text = run.exec(node, ["cat", saved]).stdout.strip()
    try:
        data = json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return {"state": "error", "error": f"unreadable probe output: {text[:200]}"}
    return data if isinstance(data, dict) else {"state": "error", "error": "bad probe output"}


def endpoint(run: ProbeRun) -> str:
    port = f":{run.probe.port}" if run.probe.port else ""
    if run.target_name != run.target:
        return f"{run.target_name} = {run.target}{port}"
    return f"{run.target}{port}"


def source_text(run: ProbeRun, data: dict[str, Any] | None = None) -> str:
    local = (data or {}).get("local", "")
    addr = local.rsplit(":", 1)[0] if local else run.source_address
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
                 what: str) -> tuple[bool, str, str]:
    """Judge `answers`, `token` and `seen_source` for a probe whose server reports back.

    `answer` is the portlab-serve payload (token, client, node) or None when
    nothing usable came back. Returns (passed, got, why).
    """
    expect = run.probe.expect
    wants_answer = expect.get("answers", True)
    if answer is None:
        got = describe_state(data)
        if not wants_answer:
            return True, got, ""
        return False, got, f"no {what} answer came back"
    client = str(answer.get("client", ""))
    client_ip = client.rsplit(":", 1)[0]
    got = f"{what} answer from node '{answer.get('node', '?')}', which saw the client as {client}"
    if not wants_answer:
        return False, got, f"expected no {what} answer here, but one came back"
    if expect.get("token") and answer.get("token") != run.context["token"]:
        return False, got + " (wrong token)", (
            "the answer did not carry this lab instance's token, so it did not come from the "
            "lab's own server")
    ref = expect.get("seen_source")
    if ref:
        want = run.address_of(ref)
        if client_ip != want:
            named = f"{ref} = {want}" if ref != want else want
            return False, got, (f"the server saw the connection coming from {client_ip}, "
                                f"expected {named}")
    return True, got, ""
