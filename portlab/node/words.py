"""portlab-probe's result in plain words, for a person at a terminal (JSON is for programs)."""

from __future__ import annotations

STATES = {
    "open": "open: the connection was accepted",
    "answered": "answered",
    "closed": "closed: refused at once (a TCP reset, or ICMP port unreachable)",
    "filtered": "filtered: nothing came back before the timeout (a firewall that drops, or "
                "nobody there)",
    "unreachable": "unreachable: no route there, or a firewall refused the way "
                   "(ICMP host unreachable or prohibited)",
    "listening": "listening",
    "not-listening": "nothing listens",
    "capturing": "capturing",
    "captured": "captured",
}


def say(result: dict) -> str:
    """The lines a person reads: what was probed, what came back, who answered."""
    kind = str(result.get("kind", ""))
    state = str(result.get("state", ""))
    target = result.get("target", "")
    lines = [f"{kind} {target}: " + STATES.get(state, state)]
    if state in ("error", "probe-error") and result.get("error"):
        head = "an answer this probe did not expect" if state == "error" else "could not probe"
        lines[0] = f"{kind} {target}: {head}: {result['error']}"
    if result.get("local"):
        lines.append(f"  sent from {result['local']}")
    if "status" in result and kind == "http":
        lines.append(f"  HTTP status {result['status']}")
    if result.get("banner"):
        lines.append(f"  its first line: {result['banner']}")
    answer = result.get("answer")
    if isinstance(answer, dict):
        who = answer.get("node") or "?"
        service = answer.get("service") or kind
        lines.append(f"  answered by the {service} server on {who}, which saw the client as "
                     f"{answer.get('client') or '?'}")
    for sock in result.get("sockets") or []:
        procs = ", ".join(f"{p.get('name', '?')} (pid {p.get('pid', '?')}, user "
                          f"{p.get('user', '?')})" for p in sock.get("processes") or [])
        lines.append(f"  {sock.get('local', '?')}: {procs or 'owner not visible'}")
    if kind == "capture" and "count" in result:
        lines.append(f"  {result['count']} packets")
    if "id" in result and state == "capturing":
        lines.append(f"  stop it with: portlab-probe capture stop {result['id']}")
    return "\n".join(lines)
