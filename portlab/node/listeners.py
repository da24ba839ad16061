"""portlab-probe listening: which process listens on a port of this node (/proc, no traffic)."""

from __future__ import annotations

import argparse
import hashlib
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


MAX_PROGRAM = 256 * 2**20  # bytes of a program hashed, at most


def digest(path: str) -> str | None:
    """The sha256 of a file (a program), or None where it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                if fh.tell() > MAX_PROGRAM:
                    return None
    except OSError:
        return None
    return h.hexdigest()


def program_of(pid: str, info: dict, want: str | None, wanted: str | None) -> None:
    """What program the process runs (/proc/PID/exe, which its name cannot change), and with
    `want`, whether it is that very program: the same bytes as `want` on this file system.
    A probe of a graded node runs in its grader, whose file system is the image's own, read
    only: a copy of another program put in the node's /usr/sbin/sshd is not sshd there."""
    try:
        info["program"] = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return
    if want is not None:
        info["same_program"] = wanted is not None and digest(f"/proc/{pid}/exe") == wanted


def process_info(pid: str, want: str | None = None, wanted: str | None = None) -> dict:
    info: dict = {"pid": int(pid)}
    program_of(pid, info, want, wanted)
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


def socket_owners(inodes: set[str], want: str | None = None) -> dict[str, list[dict]]:
    """Socket inode -> the processes holding it open (found through /proc/PID/fd); with
    `want` (a program's path), each says whether it runs that program."""
    wanted = digest(want) if want is not None else None
    if want is not None and wanted is None:
        raise CannotProbe(f"cannot read {want}, the program to compare with, on this node")
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
            owners[inode].append(process_info(pid, want, wanted))
    return owners


def probe_listening(args: argparse.Namespace) -> dict:
    sockets = listening_sockets(args.proto, args.port)
    owners = socket_owners(set(sockets), getattr(args, "program", None))
    return {
        "target": f"{args.proto}/{args.port}",
        "state": "listening" if sockets else "not-listening",
        "sockets": [{"local": local, "uid": uid, "user": user_name(uid),
                     "processes": owners[inode]}
                    for inode, (local, uid) in sorted(sockets.items(), key=lambda kv: kv[1])],
    }
