"""portlab-probe listening: which process listens on a port of this node (/proc, no traffic)."""

from __future__ import annotations

import argparse
import os
import pwd
import socket
import sys

from probeerror import CannotProbe

SOCKET_LISTENING = {"tcp": "0A", "udp": "07"}  # TCP_LISTEN; an unconnected bound UDP socket


def proc_address(text: str) -> str:
    """/proc/net/tcp's "0100007F:0016" -> "127.0.0.1:22" (addresses are in host byte order)."""
    addr, port = text.rsplit(":", 1)
    raw = bytes.fromhex(addr)
    words = [raw[i:i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [w[::-1] for w in words]
    raw = b"".join(words)
    if len(raw) == 4:
        return f"{socket.inet_ntop(socket.AF_INET, raw)}:{int(port, 16)}"
    return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{int(port, 16)}"


def listening_sockets(proto: str, port: int) -> dict[str, tuple[str, int]]:
    """Socket inode -> (local address, owner's uid), for this node's sockets listening on PORT.

    The owner is the user whose process made the socket: /proc/net says it even where the
    process itself is not visible (another user's /proc/PID/fd needs CAP_SYS_PTRACE)."""
    found: dict[str, tuple[str, int]] = {}
    read = 0
    for table in (proto, proto + "6"):
        try:
            with open(f"/proc/net/{table}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        read += 1
        for row in rows:
            parts = row.split()
            if len(parts) < 10 or parts[3] != SOCKET_LISTENING[proto]:
                continue
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                found[parts[9]] = (proc_address(parts[1]), int(parts[7]))
    if not read:
        raise CannotProbe(f"cannot read /proc/net/{proto}: this node's sockets are not visible")
    return found


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_info(pid: str) -> dict:
    info: dict = {"pid": int(pid)}
    try:
        with open(f"/proc/{pid}/comm") as fh:
            info["name"] = fh.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            info["cmdline"] = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        with open(f"/proc/{pid}/status") as fh:
            uids = next(ln for ln in fh if ln.startswith("Uid:")).split()
        info["uid"] = int(uids[2])  # effective: whose rights the process binds with
        info["user"] = user_name(info["uid"])
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    return info


def socket_owners(inodes: set[str]) -> dict[str, list[dict]]:
    """Socket inode -> the processes holding it open (found through /proc/PID/fd)."""
    owners: dict[str, list[dict]] = {inode: [] for inode in inodes}
    pids = sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        held = set()
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in owners:
                held.add(link[8:-1])
        for inode in sorted(held):
            owners[inode].append(process_info(pid))
    return owners


def probe_listening(args: argparse.Namespace) -> dict:
    sockets = listening_sockets(args.proto, args.port)
    owners = socket_owners(set(sockets))
    return {
        "target": f"{args.proto}/{args.port}",
        "state": "listening" if sockets else "not-listening",
        "sockets": [{"local": local, "uid": uid, "user": user_name(uid),
                     "processes": owners[inode]}
                    for inode, (local, uid) in sorted(sockets.items(), key=lambda kv: kv[1])],
    }
