"""listening: which process listens on a port of the node itself (its sockets, not traffic).

This probe sends nothing. It reads the node's own sockets (/proc/net/tcp) and
the processes holding them, the way `ss -ltnp` does. It answers "is the
service still running?", which traffic from outside cannot: a firewall that
drops port 22 looks the same from outside as a stopped sshd, and a connection
from the node to itself may be dropped by the very rule being checked. It is
process state, never firewall configuration.
"""

from __future__ import annotations

import os
from typing import Any

from portlab.model.probekinds import KindSchema
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun
from portlab.probes.common import FRESH, run_tool, source_text


def names_of(process: dict[str, Any]) -> set[str]:
    """What a process may be called: its name (comm) and its program's base name."""
    names = {str(process.get("name", ""))}
    argv0 = str(process.get("cmdline", "")).split(" ", 1)[0]
    names.add(os.path.basename(argv0).rstrip(":"))
    return names - {""}


def _held_by(sock: dict[str, Any], name: str) -> bool:
    return any(name in names_of(p) for p in sock.get("processes") or [])


def _where(wrong: list[dict[str, Any]], sockets: list[dict[str, Any]]) -> str:
    """Which sockets, where only some of the port's are wrong."""
    if len(wrong) == len(sockets):
        return ""
    return (f" (on {', '.join(str(s.get('local')) for s in wrong)}; every socket on the port "
            "must be, or a client may reach the wrong one)")


def describe(data: dict[str, Any], proto: str, port: int | None) -> str:
    sockets = data.get("sockets") or []
    if not sockets:
        return f"nothing listens on {proto.upper()} port {port}"
    where: dict[str, list[str]] = {}  # "sshd (pid 22)" -> its listening addresses
    for sock in sockets:
        procs = sock.get("processes") or []
        who = ", ".join(f"{p.get('name', '?')} (pid {p.get('pid', '?')}"
                        + (f", program {p.get('program', '?')}"
                           if p.get("same_program") is False else "")
                        + (f", user {p.get('user', p.get('uid'))})" if "uid" in p else ")")
                        for p in procs)
        if not procs and "uid" in sock:
            who = f"a program of user {sock.get('user', sock['uid'])} (its process is not visible)"
        where.setdefault(who or "a socket with no visible process", []).append(
            str(sock.get("local")))
    return "; ".join(f"{who} listens on {', '.join(addrs)}" for who, addrs in where.items())


def run(job: ProbeRun) -> ProbeResult:
    proto = job.probe.options.get("proto", "tcp")
    port = job.probe.port
    expect = job.probe.expect
    want_program = expect.get("program")
    data = run_tool(job, ["listening", proto, str(port)]
                    + (["--program", str(want_program)] if want_program else []))
    want_listening = expect.get("listening", True)
    want_process = expect.get("process")
    want_user = expect.get("user")
    sockets = data.get("sockets")
    if not isinstance(sockets, list) or (data["state"] == "listening") != bool(sockets):
        raise CannotObserve(f"portlab-probe on {job.source} gave a list of sockets that does not "
                            f"add up: {str(data)[:200]}",
                            f"the node's own tools are broken: {FRESH}", data=data)
    got = describe(data, proto, port)
    passed, why, seen = True, "", ""
    if not want_listening:
        if sockets:
            passed, why, seen = (False, f"expected nothing to listen on {proto.upper()} port "
                                 f"{port}", "listening")
    elif not sockets:
        passed, why, seen = (False, "no program listens on that port, so nothing can answer "
                             "there", "not-listening")
    elif want_process:
        # every socket on the port: a decoy of the right name on 127.0.0.1 beside another
        # program on the address clients reach is not the right program there
        others = [s for s in sockets if not _held_by(s, want_process)]
        if others:
            passed, why, seen = (False, f"the program listening there is not {want_process}"
                                 + _where(others, sockets), "wrong-program")
    if passed and want_listening and want_program and sockets:
        # The program itself, which a name cannot fake: `cp /usr/bin/socat /tmp/sshd` runs
        # a process called sshd, and its /proc/PID/exe is still socat's bytes.
        wrong, programs = [], set()
        for sock in sockets:
            owners = [p for p in sock.get("processes") or []
                      if not want_process or want_process in names_of(p)]
            if not owners:
                raise CannotObserve(f"portlab-probe on {job.source} did not say which program "
                                    f"holds {proto.upper()} port {port}",
                                    f"the node's own tools are broken: {FRESH}", data=data)
            if not any(p.get("same_program") is True for p in owners):
                wrong.append(sock)
                programs |= {str(p.get("program", "?")) for p in owners}
        if wrong:
            passed, why, seen = (False, f"the program listening there is not "
                                 f"{want_program} but {', '.join(sorted(programs))}, whatever "
                                 "its name says" + _where(wrong, sockets), "wrong-program")
    if passed and want_listening and want_user:
        # The socket's owner: /proc/net says it even when the process is another user's and
        # not visible. Every socket on the port: a decoy of that user's on 127.0.0.1 beside
        # root's server on the address clients reach does not make the server that user's.
        if not all("uid" in s for s in sockets):
            raise CannotObserve(f"portlab-probe on {job.source} did not say which user runs the "
                                f"program on {proto.upper()} port {port}",
                                f"the node's own tools are broken: {FRESH}", data=data)
        wrong = [s for s in sockets if str(s.get("user", s["uid"])) != want_user]
        if wrong:
            users = sorted({str(s.get("user", s["uid"])) for s in wrong})
            passed, why, seen = False, (f"the program listening there runs as "
                                        f"{', '.join(users)}, not as {want_user}"
                                        + _where(wrong, sockets)), "wrong-user"
    sent = f"nothing: read {job.source}'s own listening sockets and their processes (like ss -lnp)"
    target = f"{job.source}, {proto.upper()} port {port}"
    return ProbeResult(Outcome.of(passed), sent, source_text(job), target, got, why, data,
                       seen=seen)


SCHEMA = KindSchema("listening",
                    "Which process listens on this node's own port (from its sockets, no "
                    "traffic)", options={"proto": ("tcp", "udp")},
                    expects={"listening": bool, "process": str, "user": str,
                             "program": str},
                    needs_target=False)
KIND = ProbeKind(SCHEMA, run, node=("listeners.py",))
