"""Cheats that once earned 10/10 in the forwarding lab with no port forward at all, and a
submission that once turned its fail into "could not grade". Each is graded now as a student
would hand it in, and fails with exit 1 and words that say what happened (never exit 3).

* stand-in: the router asks the PC's server for its status, reads the token from the answer,
  and serves a copy on the router itself;
* relay: a userspace relay on the router fetches the PC's real answer over a connection of
  its own and rewrites the client it names to the friend's address;
* crash: a server on the router answers the friend's ping with JSON nested 100000 deep;
* hidden: the game forwarded right, the photo library forwarded on a port no scanner's list
  knows, and the router's `iptables-save` and `nft` replaced by scripts that leave it out, so
  that the router's own tools never name the port for the scan to try. In a grade they are
  read in the router's grader, with the image's own tools.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from portlab.model.context import Binding
from portlab.model.variant import variant_lab
from tests.integration.helpers import portlab


def variant(student: str) -> tuple[int, dict[str, str]]:
    """The game port and the addresses of `student`'s variant of the forwarding lab."""
    lab, var = variant_lab("forwarding", student)
    binding = Binding(lab, lab.name, var.subnets, "x")
    return int(lab.params["game_port"]), dict(binding.addresses)


def photos_port(student: str) -> int:
    lab, _ = variant_lab("forwarding", student)
    return int(lab.params["photos_port"])


def stand_in(port: int, addr: dict[str, str]) -> str:
    return textwrap.dedent(f"""\
        # No port forward: a copy of the PC's game server, on the router itself, with the
        # token read from the real one's answer.
        token=$(portlab-probe minecraft {addr['gamer-pc.lan']} {port} | python3 -c \\
          'import json, sys; print(json.load(sys.stdin)["answer"]["token"])')
        iptables -I INPUT -p tcp --dport {port} -j ACCEPT
        setsid portlab-serve minecraft --port {port} --token "$token" \\
          --motd "Your home server" </dev/null >/dev/null 2>&1 &
        sleep 1
        """)


# Minecraft's VarInt, in the scripts below (they run on the router's own python3)
VARINT = '''
def varint(v):
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
'''

RELAY = r'''
import json, socket, sys, threading
PC, PORT, FRIEND = sys.argv[1], int(sys.argv[2]), sys.argv[3]
''' + VARINT + r'''
def read_varint(data, pos):
    n = shift = 0
    while True:
        b = data[pos]; pos += 1
        n |= (b & 0x7F) << shift; shift += 7
        if not b & 0x80:
            return n, pos

def rewrite(frame, client):
    """The status answer with its "client" made the friend's: what a port forward shows."""
    length, pos = read_varint(frame, 0)
    body = frame[pos:pos + length]
    strlen, at = read_varint(body, 1)
    status = json.loads(body[at:at + strlen])
    status["portlab"]["client"] = client
    text = json.dumps(status).encode()
    body = b"\x00" + varint(len(text)) + text
    return varint(len(body)) + body + frame[pos + length:]

def serve(conn, peer):
    up = socket.create_connection((PC, PORT))
    first = conn.recv(65536)
    up.sendall(first)
    data = b""
    while True:
        chunk = up.recv(65536)
        data += chunk
        try:
            length, pos = read_varint(data, 0)
            if len(data) >= pos + length:
                break
        except IndexError:
            pass
    conn.sendall(rewrite(data, "%s:%d" % peer))
    while True:  # the ping and its pong, passed on as they are
        chunk = conn.recv(65536)
        if not chunk:
            break
        up.sendall(chunk)
        conn.sendall(up.recv(65536))
    conn.close(); up.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", PORT)); listener.listen()
while True:
    c, p = listener.accept()
    threading.Thread(target=serve, args=(c, p), daemon=True).start()
'''


def relay(port: int, addr: dict[str, str]) -> str:
    return (f"cat > /root/relay.py <<'EOF'{RELAY}EOF\n"
            f"iptables -I INPUT -p tcp --dport {port} -j ACCEPT\n"
            f"setsid python3 /root/relay.py {addr['gamer-pc.lan']} {port} {addr['friend.wan']} "
            "</dev/null >/dev/null 2>&1 &\nsleep 1\n")


CRASH = r'''
import socket, sys
PORT = int(sys.argv[1])
''' + VARINT + r'''text = b"[" * 100000 + b"]" * 100000
body = b"\x00" + varint(len(text)) + text
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", PORT)); listener.listen()
while True:
    c, _ = listener.accept()
    c.recv(4096)
    c.sendall(varint(len(body)) + body)
    c.close()
'''


def crash(port: int, addr: dict[str, str]) -> str:
    return (f"cat > /root/deep.py <<'EOF'{CRASH}EOF\n"
            f"iptables -I INPUT -p tcp --dport {port} -j ACCEPT\n"
            f"setsid python3 /root/deep.py {port} </dev/null >/dev/null 2>&1 &\nsleep 1\n")


def hidden(port: int, addr: dict[str, str]) -> str:
    pc, photos = addr["gamer-pc.lan"], photos_port("cheat-hidden")
    return textwrap.dedent(f"""\
        iptables -t nat -A PREROUTING -i wan -p tcp --dport {port} -j DNAT --to-destination {pc}
        iptables -A FORWARD -i wan -o lan -p tcp -d {pc} --dport {port} -j ACCEPT
        iptables -t nat -A PREROUTING -i wan -p tcp --dport 47123 -j DNAT \\
          --to-destination {pc}:{photos}
        iptables -A FORWARD -i wan -o lan -m conntrack --ctstate DNAT -j ACCEPT
        rm -f /usr/sbin/iptables-save
        printf '#!/bin/sh\\n/usr/sbin/iptables-nft-save "$@" | grep -v 47123\\n' \\
          > /usr/sbin/iptables-save
        mv /usr/sbin/nft /usr/sbin/nft.real
        printf '#!/bin/sh\\n/usr/sbin/nft.real "$@" | grep -v 47123\\n' > /usr/sbin/nft
        chmod 755 /usr/sbin/iptables-save /usr/sbin/nft
        """)


CHEATS = {"cheat-stand-in": stand_in, "cheat-relay": relay, "cheat-crash": crash}
HIDDEN = "cheat-hidden"


def check(result: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in result["checks"] if c["id"] == check_id)


def test_cheats_without_a_port_forward_fail_with_words_that_explain_them(
        tmp_path: Path, node_image: str) -> None:
    root = tmp_path / "class"
    for student, make in {**CHEATS, HIDDEN: hidden}.items():
        (root / student).mkdir(parents=True)
        (root / student / "router.sh").write_text(make(*variant(student)))
    out = tmp_path / "grades"
    proc = portlab("grade", "forwarding", "--submissions", str(root), "--json", str(out))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # every one was graded
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    for student in CHEATS:
        result = results[student]
        assert result["status"] == "failed", (student, result["message"], result["checks"])
        assert check(result, "reach")["status"] == "fail", (student, result["checks"])
        assert check(result, "real-source")["status"] == "fail", student
    said = {s: check(results[s], "reach")["message"] for s in CHEATS}
    assert "the answer came from router, not gamer-pc: something on router answered in " \
        "gamer-pc's place" in said["cheat-stand-in"], said
    assert "its proof does not match what it says" in said["cheat-relay"], said
    assert "JSON nested too deeply" in said["cheat-crash"], said
    # the hidden forward: the game works, and the scan still finds the port the router's
    # own tools were made to leave out
    hid = results[HIDDEN]
    assert [c["id"] for c in hid["checks"] if c["status"] != "pass"] == ["only-game-port"], \
        hid["checks"]  # 8 of 10: the pass mark, and not full marks
    assert "47123 open" in check(hid, "only-game-port")["message"], hid["checks"]
    # the same, alone, from the command a student runs: exit 1, not 3
    alone = portlab("grade", "forwarding", "--submission", str(root / "cheat-crash"),
                    "--student", "cheat-crash")
    assert alone.returncode == 1, (alone.stdout, alone.stderr)
    assert "could not grade" not in alone.stdout + alone.stderr
