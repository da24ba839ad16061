"""A running (or half-started) lab instance, and its nodes, reached through the backend.

`Instance` is what the rest of portlab holds: the instance as the engine
lists it (`InstanceInfo`), and the backend to act on it. Probes run their
commands through it (it is the `NodeRunner` they are given), so a node that
died under a command is named, instead of its probe reading as a failure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network

from portlab.backend.base import (
    Backend,
    ExecResult,
    FileCopy,
    InstanceInfo,
    NodeInfo,
    Stream,
    Terminal,
)
from portlab.errors import BackendUnreachable, RuntimeProblem, UsageError
from portlab.model.context import Binding
from portlab.model.types import Lab, ParamValue

KILLED = 128 + 9  # the exit code of a command killed by SIGKILL, as when its node is killed


class Instance:
    def __init__(self, info: InstanceInfo, backend: Backend) -> None:
        self.info = info
        self.backend = backend

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def lab_name(self) -> str:
        """The name of the lab it runs (`load_lab()` is the lab itself)."""
        return self.info.lab

    def load_lab(self) -> Lab:
        """The lab it runs, with the params it was started with."""
        from portlab.model import catalog

        return catalog.find(self.lab_name, self.params, strict=False)

    @property
    def token(self) -> str:
        return self.info.token

    @property
    def params(self) -> dict[str, ParamValue]:
        return dict(self.info.params)

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        return self.info.nodes

    @property
    def containers(self) -> dict[str, NodeInfo]:
        """The nodes (each is one container on Docker)."""
        return self.info.nodes

    def subnets(self) -> dict[str, IPv4Network]:
        """Every subnet of the instance, virtual ones (like a VPN tunnel) included."""
        return dict(self.info.subnets)

    def interfaces(self) -> dict[str, dict[str, str]]:
        """node -> interface name -> address/prefix (from the engine's labels), and the IPv6
        one after it on a dual-stack node's interfaces on IPv6 networks."""
        return {name: {k: " ".join(filter(None, (v, node.interfaces6.get(k))))
                       for k, v in node.interfaces.items()}
                for name, node in sorted(self.info.nodes.items())}

    def binding(self, lab: Lab) -> Binding:
        """The lab's one template context for this instance (lab loaded with its params)."""
        return Binding(lab, self.name, self.subnets(), self.token, running=True,
                       key_seed=self.info.key_seed, secret=self.info.secret)

    def node(self, name: str) -> NodeInfo:
        if name not in self.info.nodes:
            known = ", ".join(sorted(self.info.nodes)) or "(none)"
            raise UsageError(f"lab '{self.lab_name}' (instance {self.name}) has no node '{name}'. "
                             f"Nodes: {known}")
        return self.info.nodes[name]

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        """Run argv on a node. A node that is gone, or was killed under the command, is a
        RuntimeProblem naming it (never a result that reads like the network's answer)."""
        info = self.node(node)
        try:
            result = self.backend.exec(info, argv)
        except BackendUnreachable:
            raise  # the engine itself is gone: it cannot say which node stopped
        except RuntimeProblem:
            self.require_running()  # a node that stopped is the real story
            raise
        if result.exit_code in (KILLED, -1) and self._stops_soon(node):
            self.require_running([node])  # the node was killed under the command
        return result

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        return self.backend.stream(self.node(node), argv)

    def terminal(self, node: str, argv: Sequence[str], *, rows: int, cols: int,
                 env: Mapping[str, str] | None = None) -> Terminal:
        """argv on a node with a terminal of its own (a page's terminal drives it)."""
        return self.backend.terminal(self.node(node), argv, rows=rows, cols=cols, env=env)

    def copy(self, node: str, files: Mapping[str, FileCopy]) -> None:
        self.backend.copy(self.node(node), files)

    def _stops_soon(self, node: str, within: float = 1.0) -> bool:
        """Whether the node is (or within a moment is) no longer running.

        An engine marks a killed container as exited a moment after the commands in it
        die, so right after an exec ended with SIGKILL the node may still say "running".
        """
        deadline = time.monotonic() + within
        while True:
            now = self.backend.nodes(self.name).get(node)
            if now is None or not now.running:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def require_running(self, nodes: list[str] | None = None) -> None:
        """Raise a clear RuntimeProblem naming each node that is not running, asking the
        engine afresh. `nodes` defaults to the nodes the instance had when it was found."""
        states = self.backend.nodes(self.name)
        down = []
        for node in sorted(nodes if nodes is not None else self.info.nodes):
            now = states.get(node)
            if now is None:
                down.append((node, "its container is gone"))
            elif not now.running:
                down.append((node, now.why_not_running()))
        if not down:
            return
        what = "; ".join(f"'{node}': {why}" for node, why in down)
        noun = "node is" if len(down) == 1 else "nodes are"
        raise RuntimeProblem(f"lab '{self.lab_name}' (instance {self.name}): {len(down)} {noun} "
                             f"not running ({what})", hint=self.hint())

    def hint(self) -> str:
        """How to get this instance back: start it again, or remove it."""
        flag = "" if self.name == self.lab_name else f" --instance {self.name}"
        down = flag or " " + self.lab_name
        return (f"`portlab up {self.lab_name}{flag}` removes what is left and starts the lab "
                f"again (changes made on its nodes are lost); `portlab down{down}` removes it")
