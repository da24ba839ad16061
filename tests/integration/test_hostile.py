"""Hostile submissions against the host that grades them (the sealed-host issue's attacks, in
our own versions). A submission is code running as root, with NET_ADMIN and NET_RAW, on a lab
node. Graded as a class beside a good submission, each gets a clear failing grade within its
limits, the good one is not disturbed, and nothing is left on the host:

* raw frames to the host: ARP for its addresses and UDP to a listener of the host's, by
  AF_PACKET (past the node's own IP stack), to the bridge's MAC and to broadcast: the host's
  listener counts nothing;
* a disk flood (six files of 64 MiB): the cap is enforced before any check, every time;
* one big file: the engine stops it at 64 MiB (the per-file limit the docs promise);
* an output flood (200 MB on stdout): portlab keeps the tail, and its memory stays flat;
* forged terminal escapes (a fake "PASS 10/10", a window title): shown as text, never
  interpreted, on a terminal, in JSON and in JUnit;
* 400 busy loops: the node's CPU share holds them (the engine's quota is set), and the grade
  counts them from the engine's side (a command run in a node that busy would answer only
  after minutes);
* a flood of the node's own log (/proc/1/fd/1): Docker keeps at most what portlab caps it to.

tests/integration/test_grading.py has the older ones (a hang, `kill -9 -1`, a fork bomb).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab import core, runtime
from portlab.backend.docker import client as docker_api
from portlab.model.plan import LOG_FILES, LOG_MAX_MIB
from tests.integration.helpers import portlab

FORGED = r"\033[2J\033[H\033[32mPASS  everything  10/10\033[0m\033]0;owned\007\033[8mhidden"

RAW_TO_HOST = r'''
import json, socket, struct, sys
hosts, port = json.loads(sys.argv[1]), int(sys.argv[2])
mac = bytes.fromhex(open("/sys/class/net/wan/address").read().strip().replace(":", ""))
me = [a for a in open("/proc/net/fib_trie").read().split() if a.count(".") == 3][0]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("wan", 0))
def csum(d):
    t = sum(struct.unpack(f"!{len(d) // 2}H", d))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
for dst in (b"\xff" * 6,):
    for host in hosts:
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(me),
                          b"\0" * 6, socket.inet_aton(host))
        s.send(dst + mac + b"\x08\x06" + arp)
        udp = struct.pack("!HHHH", 40000, port, 8 + 6, 0) + b"hello!"
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                         socket.inet_aton(me), socket.inet_aton(host))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(dst + mac + b"\x08\x00" + ip + udp)
print("sent", len(hosts) * 2, "frames")
'''


def submissions(host_port: int) -> dict[str, tuple[str, str]]:
    """student -> (router.sh, the start of the grade's message or of a check's feedback)."""
    hosts = json.dumps(sorted(_host_addresses()))
    return {
        "raw-to-host": (f"python3 -c '{RAW_TO_HOST}' '{hosts}' {host_port}", ""),
        "disk-flood": ("for i in 1 2 3 4 5 6; do head -c 64M /dev/zero > /root/f$i; done",
                       "the submission wrote more than 256 MiB to the disk of router"),
        "big-file": ("head -c 100M /dev/zero > /root/big; ls -l /root/big", ""),
        "output-flood": ("head -c 200000000 /dev/zero | tr '\\0' y", ""),
        "escapes": (f"printf '{FORGED}\\n'; exit 1", ""),
        "spins": ("for i in $(seq 400); do (while :; do :; done) & done; sleep 5",
                  "the submission started processes without end on router"),
    }


def _host_addresses() -> set[str]:
    links = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    return {a["local"] for link in links for a in link.get("addr_info", [])
            if not a["local"].startswith("127.")}


@pytest.fixture
def host_udp() -> Iterator[tuple[int, list[str]]]:
    """A UDP listener on every address of the host: what reaches it is counted."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", 0))
    sock.settimeout(0.2)
    came: list[str] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(2048)
            except OSError:
                continue
            came.append(str(peer[0]))

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1]), came
    stop.set()
    thread.join(timeout=5)
    sock.close()


def peak_kib(*args: str) -> tuple[int, str, int]:
    """Run `portlab ARGS`: its exit code, its output, and the most memory its process held at
    once (ru_maxrss, KiB)."""
    with open(os.devnull, "rb") as stdin, \
            subprocess.Popen([sys.executable, "-m", "portlab", *args], stdin=stdin,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        said = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, said, int(usage.ru_maxrss)


def test_hostile_submissions_get_failing_grades_and_leave_the_host_alone(
        tmp_path: Path, node_image: str, host_udp: tuple[int, list[str]]) -> None:
    port, came = host_udp
    root = tmp_path / "class"
    attacks = submissions(port)
    for student, (script, _) in attacks.items():
        (root / student).mkdir(parents=True)
        (root / student / "router.sh").write_text(script + "\n")
    portlab("classroom", "solution", "forwarding", str(root / "good"), "--student", "good",
            check_rc=0)
    out = tmp_path / "grades"
    proc = portlab("grade", "forwarding", "--submissions", str(root), "--json", str(out),
                   "--parallel", "4", timeout=900)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    good = results["good"]
    assert (good["status"], good["score"]) == ("passed", good["max_score"]), good["checks"]
    for student, (_, words) in attacks.items():
        result = results[student]
        assert result["status"] == "failed", (student, result["message"])
        if student == "spins":  # at half a core, forking 400 loops may outlast its time first
            assert result["message"].startswith((words, "router.sh did not finish within")), \
                result["message"]
            continue
        assert result["message"].startswith(words), (student, result["message"])
    # the cap held before any check: no check was even run
    assert all(c["status"] == "not-run" for c in results["disk-flood"]["checks"]), \
        results["disk-flood"]["checks"]
    # the engine's per-file limit: 64 MiB and not a byte more
    big = results["big-file"]["files"][0]["output"]
    assert "File size limit exceeded" in big and " 67108864 " in big, big
    # the output flood: what is kept is its end, bounded
    flood = results["output-flood"]["files"][0]["output"]
    assert 0 < len(flood) <= 2000 and set(flood.strip()) == {"y"}
    # escapes: as text on the terminal, never interpreted; escaped in the JSON file
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    assert "\\u001b]0;owned\\u0007" in (out / "escapes.json").read_text()
    # nothing reached the host's listener; nothing is left
    threading.Event().wait(0.5)
    assert came == [], f"the host's listener was reached from {came}"
    assert not [i for i in runtime.instances() if i.startswith("grade-")]


def test_an_output_flood_leaves_portlabs_memory_flat(tmp_path: Path, node_image: str) -> None:
    """200 MB on stdout against a quiet submission: the grade's process holds about as much
    memory either way (portlab reads the output as it comes and keeps its end)."""
    peaks = {}
    for name, script in (("quiet", "echo hello"),
                         ("flood", "head -c 200000000 /dev/zero | tr '\\0' y")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "router.sh").write_text(script + "\n")
        code, said, peaks[name] = peak_kib("grade", "forwarding", "--submission", str(folder),
                                           "--student", name)
        assert code == 1, said
    assert peaks["quiet"] > 0 and peaks["flood"] < peaks["quiet"] + 32 * 1024, peaks


def test_the_cpu_share_and_the_file_limit_are_the_engines(node_image: str) -> None:
    """A graded node runs under the engine's limits: its CPU quota, its pids, its memory, and
    RLIMIT_FSIZE for every process on it (the per-file cap), whatever a submission does."""
    from portlab.grading.shape import shape
    from portlab.grading.watch import Settings
    from portlab.model.variant import variant_lab

    lab, variant = variant_lab("forwarding", "limits")
    settings = Settings()
    inst = runtime.up(lab, "t-limits", shape=shape(lab, variant, settings.limits, True))
    try:
        c = docker_api.client()
        host = c.api.inspect_container(inst.info.nodes["router"].ref)["HostConfig"]
        assert host["NanoCpus"] == int(settings.limits.cpus * 1e9)
        assert host["PidsLimit"] == settings.limits.pids
        assert {u["Name"]: u["Hard"] for u in host["Ulimits"]}["fsize"] == \
            settings.limits.file_mib * 2**20
        said = inst.exec("router", ["sh", "-c", "ulimit -H -f; head -c 80M /dev/zero > /x; "
                                    "stat -c %s /x"])
        blocks, size = said.stdout.split()
        assert int(blocks) * 512 == settings.limits.file_mib * 2**20  # dash counts 512 bytes
        assert int(size) == settings.limits.file_mib * 2**20
    finally:
        runtime.down("t-limits")


def test_a_nodes_own_log_is_capped(node_image: str) -> None:
    """60 MB written to the node's own stdout (/proc/1/fd/1, its log on the host's disk):
    Docker keeps at most LOG_FILES files of LOG_MAX_MIB, whatever the daemon's default."""
    core.up("forwarding", instance="t-logs")
    try:
        inst = runtime.instances()["t-logs"]
        inst.exec("router", ["sh", "-c", "head -c 60000000 /dev/zero | tr '\\0' x | "
                                         "fold -w 1000 > /proc/1/fd/1"])
        c = docker_api.client()
        info = c.api.inspect_container(inst.info.nodes["router"].ref)
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"max-size": f"{LOG_MAX_MIB}m",
                                            "max-file": str(LOG_FILES)}}
        kept = sum(len(chunk) for chunk in c.api.logs(inst.info.nodes["router"].ref,
                                                      stream=True, follow=False))
        assert kept <= LOG_FILES * LOG_MAX_MIB * 2**20 * 1.1, kept
    finally:
        runtime.down("t-logs")
