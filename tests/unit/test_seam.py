"""The seam: only the backend talks to the engine, and everything above it works through it.

* Loading every lab, `portlab list` and `portlab show` never import the Docker SDK, and
  work on a machine where it cannot be imported at all.
* No module outside portlab/backend/docker imports the Docker SDK or runs Compose
  (read from the source, so a new module that does is caught).
* A whole `portlab check` runs against a backend that is not Docker: a fake one whose
  nodes answer from a table. Checks see only the seam.
* The lab format's probe kinds and the probe modules name the same kinds.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from ipaddress import IPv4Network
from pathlib import Path
from types import SimpleNamespace
from typing import NoReturn

import pytest

from portlab import backend, core
from portlab.backend.base import (
    Backend,
    EngineFacts,
    ExecResult,
    FileCopy,
    InstanceInfo,
    NodeInfo,
    NodeProbe,
    Pruned,
    Removed,
    Stream,
)
from portlab.errors import PortlabError
from portlab.model.plan import Plan
from portlab.probes.base import Outcome
from portlab.progress import Progress
from tests.unit.fakes import SECRET, nonce_of, served

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "portlab"
FACTORY = PACKAGE / "backend" / "__init__.py"  # picks the backend in use: it names them
DOCTOR = PACKAGE / "doctor"
HOST_READER = DOCTOR / "hostinfo.py"  # `portlab doctor` reads the host's firewall with iptables
PAGER = DOCTOR.parent / "cli" / "pager.py"  # less, for a person's terminal; never the engine


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_docker_backend_imports_the_docker_sdk_or_runs_compose() -> None:
    engine = PACKAGE / "backend" / "docker"
    for path in PACKAGE.rglob("*.py"):
        if engine in path.parents or path.parent.name == "node" or path == FACTORY:
            continue
        mods = _imports(path)
        sdk = {m for m in mods if m == "docker" or m.startswith("docker.")
               or m in ("requests", "urllib3") or m.startswith("portlab.backend.docker")}
        assert not sdk, f"{path.relative_to(ROOT)} imports {sdk}"
        text = path.read_text()
        # The doctor names Compose in its findings (what the backend's facts() found) and
        # runs one program itself: the host's own iptables, which is no engine.
        if DOCTOR not in path.parents:
            assert "docker-compose" not in text and '"compose"' not in text, path
        assert "subprocess" not in mods or path.name == "children.py" or \
            path in (HOST_READER, PAGER), \
            f"{path.relative_to(ROOT)} runs programs: only the backend does"


def test_loading_labs_never_imports_the_docker_sdk() -> None:
    code = ("import sys\n"
            "from portlab.model import catalog\n"
            "found = catalog.scan()\n"
            "assert found.labs and not found.broken, found.broken\n"
            "from portlab.model.context import Binding\n"
            "from portlab.views import brief\n"
            "for lab in found.labs: brief.show(Binding.preview(lab), color=False)\n"
            "bad = sorted(m for m in sys.modules if m == 'docker' or m.startswith('docker.'))\n"
            "print(bad)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_list_and_show_work_where_the_docker_sdk_cannot_be_imported(tmp_path: Path) -> None:
    blocked = tmp_path / "docker"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('the docker SDK is not installed')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    for args in (["list"], ["show", "forwarding"], ["show", "vpn", "--param", "wg_port=41000"]):
        proc = subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                              text=True, timeout=60, env=env, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert "41000" in proc.stdout


# --- a backend that is not Docker -----------------------------------------------------------

Answer = Callable[[list[str]], dict[str, object]]  # portlab-probe's argv -> what it prints


class TableBackend:
    """A Backend whose one instance is a table: nodes answer portlab-probe from `answers`."""

    name = "table"
    ENGINE_CHECKS: dict[str, str] = {}  # a table has no engine of its own to judge
    data_root = ""

    def __init__(self, info: InstanceInfo, answers: dict[tuple[str, str], Answer]):
        self.info = info
        self.answers = answers  # (node, probe kind) -> the JSON portlab-probe prints
        self.ran: list[tuple[str, list[str]]] = []
        self.fresh: list[tuple[str, str]] = []  # (node, address) of each portlab-fresh

    def image_tag(self) -> str:
        return "table/node:1"

    def image_exists(self, ref: str) -> bool:
        return True

    def ensure_image(self, progress: Progress, *, offline: bool | None = None) -> str:
        return self.image_tag()

    def build_image(self, progress: Progress, *, offline: bool | None = None,
                    force: bool = False) -> str:
        return self.image_tag()

    def instances(self) -> dict[str, InstanceInfo]:
        return {self.info.name: self.info}

    def nodes(self, instance: str) -> dict[str, NodeInfo]:
        return dict(self.info.nodes)

    def taken_subnets(self) -> list[IPv4Network]:
        return []

    def render(self, plan: Plan) -> str:
        return plan.instance

    def early_start(self, instance: str) -> AbstractContextManager[object | None]:
        return nullcontext()

    def start(self, plan: Plan, progress: Progress, early: object | None = None) -> InstanceInfo:
        raise AssertionError("not started here")

    def remove(self, instance: str, progress: Progress) -> Removed:
        return Removed()

    def prune(self, progress: Progress, *, images: bool = False, current: bool = False,
              dry_run: bool = False) -> Pruned:
        return Pruned()

    def exec(self, node: NodeInfo, argv: Sequence[str]) -> ExecResult:
        if argv[0] == "portlab-fresh":  # a fresh source address, for this one command alone
            self.fresh.append((node.name, argv[2]))
            argv = argv[3:]
        self.ran.append((node.name, list(argv)))
        if argv[0] == "nmap":  # every port closed: what a router forwarding nothing else says
            named = argv[argv.index("-p") + 1].split(",") if "-p" in argv else []
            rows = "".join(f'<port protocol="tcp" portid="{p}"><state state="closed"/></port>'
                           for p in named)
            return ExecResult(0, NMAP_ALL_CLOSED.replace("</ports>", rows + "</ports>"), "")
        if argv[0] == "iptables-save":  # the router's rules as its setup leaves them
            return ExecResult(0, ROUTER_RULES[argv[-1]], "")
        if argv[0] == "sh":  # the ports a node's rules and sockets name: its setup's rules
            return ExecResult(0, "\n".join(ROUTER_RULES.values()), "")
        kind = argv[3]
        answer = self.answers[(node.name, kind)](list(argv))
        return ExecResult(0, json.dumps({**answer, "kind": kind}) + "\n", "")

    def stream(self, node: NodeInfo, argv: Sequence[str]) -> Stream:
        raise AssertionError("no streams in checks")

    def copy(self, node: NodeInfo, files: Mapping[str, FileCopy]) -> None:
        raise AssertionError("no copies in checks")

    def logs(self, node: NodeInfo, *, follow: bool = False,
             tail: int | None = None) -> Iterator[bytes]:
        yield b"portlab-ready\n"

    def written(self, node: NodeInfo) -> int:
        return 0

    def processes(self, node: NodeInfo) -> int:
        return 2

    def attach(self, node: NodeInfo, argv: Sequence[str], *, tty: bool,
               env: Mapping[str, str] | None = None) -> NoReturn:
        raise AssertionError("no terminal here")

    def facts(self) -> EngineFacts:
        return EngineFacts(reachable=True, version="table 1")

    def probe_node(self) -> NodeProbe:
        return NodeProbe(ran=False, problem="a table has no kernel")

    def explain(self, exc: BaseException) -> PortlabError | None:
        return None


NMAP_ALL_CLOSED = ('<?xml version="1.0"?><nmaprun><host><ports><extraports state="closed" '
                   'count="65535"/></ports></host><runstats><finished/></runstats></nmaprun>')


ROUTER_RULES = {
    "nat": "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
           "[3:180] -A POSTROUTING -o wan -j MASQUERADE\nCOMMIT\n",
    "filter": "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"
              "[12:720] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
              "[2:120] -A FORWARD -i lan -o wan -j ACCEPT\nCOMMIT\n",
}


def sent_from(argv: list[str]) -> str:
    """The address a probe sends from: `--source ADDR` (fresh_source), or the friend's own."""
    return argv[argv.index("--source") + 1] if "--source" in argv else "198.51.100.10"


def forwarding_table() -> TableBackend:
    """A table backend holding one forwarding instance whose nodes answer as a solved lab's."""
    lab = core.get_lab("forwarding")
    subnets = lab.preferred_subnets()
    nodes = {n.name: NodeInfo(n.name, f"id-{n.name}", n.name, "running", "Up", "table/node:1")
             for n in lab.nodes}
    info = InstanceInfo("forwarding", "forwarding", "tok42", "forwarding",
                        dict(lab.params), subnets, nodes, secret=SECRET)

    def answer(node: str, client: str, **more: object) -> Answer:
        return lambda argv: {"nonce": nonce_of(argv), **more,
                             "answer": served(argv, node, client, token="tok42")}

    return TableBackend(info, {
        ("friend", "minecraft"): lambda argv: answer(  # from its own address, or a fresh one
            "gamer-pc", f"{sent_from(argv)}:40000", state="open", local=f"{sent_from(argv)}:40000",
            status={"description": "a server"})(argv),
        ("tv", "http"): answer("gamer-pc", "10.0.0.1:4000", state="open", status=200),
        ("friend", "tcp"): lambda argv: {"state": "filtered"},
        ("friend", "http"): lambda argv: {"state": "error", "error": "not an HTTP answer",
                                          "nonce": nonce_of(argv)},
        ("gamer-pc", "http"): answer("friend", "198.51.100.1:5000", state="open", status=200),
        ("gamer-pc", "minecraft"): answer("friend", "198.51.100.1:5001", state="open",
                                          status={"description": "the friend's server"}),
    })


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> TableBackend:
    fake = forwarding_table()
    _check: Backend = fake  # a Backend by its type: mypy checks the seam here
    monkeypatch.setattr(backend, "_backend", _check)
    return fake


def test_a_whole_check_runs_through_a_backend_that_is_not_docker(table: TableBackend) -> None:
    report = core.check("forwarding")
    assert report.outcome is Outcome.PASS, [(r.id, [p.why for p in r.probes])
                                            for r in report.results]
    from portlab.probes.scan import NAMED_PORTS

    sent = [(node, argv) for node, argv in table.ran if tuple(argv) != NAMED_PORTS]
    assert {node for node, _ in sent} == {"friend", "tv", "gamer-pc"}  # the router is read only
    assert {node for node, argv in table.ran if tuple(argv) == NAMED_PORTS} == {"router"}
    assert all(argv[:2] == ["portlab-probe", "--save"] for _, argv in sent if argv[0] != "nmap")
    # a player, the scan (three nmap runs: the ports, nmap's list of ports, real connections
    # to the ports the router names) and the packet routed at the PC come from fresh
    # addresses, each command under portlab-fresh (given for it and taken back in the same
    # exec); three addresses, all the friend's
    assert len(table.fresh) == 5 and {node for node, _ in table.fresh} == {"friend"}
    assert len({address for _, address in table.fresh}) == 3
    assert [i["name"] for i in core.status()[0]["nodes"]] == ["friend", "gamer-pc", "router",
                                                               "tv"]


def test_down_all_goes_on_past_an_instance_it_cannot_remove(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale endpoint on one instance's network does not leave every later one behind."""
    from portlab import locks
    from portlab.errors import RuntimeProblem
    from portlab.progress import Quiet
    from portlab.runtime import lifecycle

    monkeypatch.setattr(locks, "forget_stale", lambda *a: None)
    tried: list[str] = []

    class Stub:
        def instances(self) -> dict[str, object]:
            return {name: SimpleNamespace(lab="x") for name in "abc"}

        def remove(self, name: str, progress: object) -> Removed:
            tried.append(name)
            if name == "b":
                raise RuntimeProblem("could not remove network x_home: has active endpoints",
                                     hint="restart the daemon")
            return Removed(containers=4, networks=2)

    with pytest.raises(RuntimeProblem) as err:
        lifecycle.down_all(Stub(), Quiet())  # type: ignore[arg-type]
    assert tried == ["a", "b", "c"]
    assert err.value.message == (
        "removed 8 containers and 4 networks, but not everything of 1 instance(s): 'b'; "
        "first: could not remove network x_home: has active endpoints")
    assert err.value.hint == "restart the daemon"
