"""Run the real tools on traced nodes, through the backend seam, and merge their events.

On each traced node, `tcpdump -i any` prints every packet that crosses one
of its interfaces; on a node that forwards (a router, a NAT box),
`conntrack -E` also prints each connection it begins tracking, with the
translation it applied, and each one that ends. Both run as streams
(portlab.backend.base.Stream): leaving the `with` block, Ctrl-C included,
ends them on the nodes, so no tcpdump or conntrack is left running there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from portlab.backend.base import NodeRunner, Stream
from portlab.errors import PortlabError, RuntimeProblem, UsageError
from portlab.model.types import Lab
from portlab.trace import events as ev

DEFAULT_FILTER = "ip"  # IPv4: the labs' traffic, without ARP and IPv6 neighbour chatter
# A lab with IPv6 networks: IPv6 too, but not ICMPv6's chatter on each link (multicast listener
# reports, 130-132 and 143; router and neighbour discovery, 133-137, IPv6's ARP)
DEFAULT_FILTER6 = "ip or (ip6 and not (icmp6 and ip6[40] >= 130 and ip6[40] <= 143))"
READY_SECONDS = 10.0


def tcpdump_argv(expr: str) -> list[str]:
    # -l: a line at a time; -nn: no name or port lookups; -tt: seconds since 1970; -p: not
    # promiscuous; --immediate-mode: each packet as it comes, not when a buffer fills
    # -B: a bigger capture buffer (KiB) than the default 2 MiB, which a burst on loopback
    # through a proxy overran ("packets dropped by kernel")
    return ["tcpdump", "-i", "any", "-nn", "-l", "-tt", "-p", "--immediate-mode", "-B", "8192",
            expr]


CONNTRACK_ARGV = ["conntrack", "-E", "-e", "NEW,DESTROY", "-o", "timestamp"]


def default_nodes(lab: Lab) -> list[str]:
    """What `portlab trace` watches when told no node: the nodes that forward (where NAT and
    firewalls are), else every node."""
    return [n.name for n in lab.nodes if n.forwarding] or [n.name for n in lab.nodes]


@dataclass
class _Tool:
    node: str
    what: str  # "tcpdump" | "conntrack"
    stream: Stream
    thread: threading.Thread | None = None
    ended: bool = False


class Trace:
    """A live trace of some nodes of one running instance. Use as a context manager:

        with Trace(instance, lab, ["router"]) as t:
            for event in t.events():
                ...
    """

    def __init__(self, nodes: NodeRunner, lab: Lab, names: Sequence[str], *,
                 expr: str = "", conntrack: bool = True, instance: str = "") -> None:
        unknown = [n for n in names if lab.node(n) is None]
        if unknown:
            raise UsageError(f"lab '{lab.name}' has no node called '{unknown[0]}'",
                             hint="its nodes: " + ", ".join(n.name for n in lab.nodes))
        self.runner = nodes
        self.instance = instance  # the instance's name, for messages and the live page
        self.lab = lab
        self.names = list(dict.fromkeys(names)) or default_nodes(lab)
        self.expr = expr.strip() or (DEFAULT_FILTER6 if any(n.ipv6 for n in lab.networks)
                                     else DEFAULT_FILTER)
        self.conntrack = conntrack
        self._tools: list[_Tool] = []
        self._queue: queue.Queue[ev.Event | None] = queue.Queue()
        self._stopped = threading.Event()
        self._links = {n.name: {i.name: f"{n.name}.{i.name}" for i in n.interfaces}
                       for n in lab.nodes if n.name in self.names}

    # --- starting and stopping ---
    def start(self) -> Trace:
        try:
            for name in self.names:
                self._add(name, "tcpdump", tcpdump_argv(self.expr))
                node = self.lab.node(name)
                if self.conntrack and node is not None and node.forwarding:
                    self._add(name, "conntrack", CONNTRACK_ARGV)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _add(self, node: str, what: str, argv: list[str]) -> None:
        tool = _Tool(node, what, self.runner.stream(node, argv))
        tool.thread = threading.Thread(target=self._read, args=(tool,), daemon=True,
                                       name=f"trace-{node}-{what}")
        self._tools.append(tool)
        tool.thread.start()

    def _read(self, tool: _Tool) -> None:
        links = self._links[tool.node]
        try:
            for line in tool.stream:
                if tool.what == "tcpdump":
                    event: ev.Event | None = ev.packet(line, tool.node, links)
                else:
                    event = ev.connection(line, tool.node)
                if event is not None:
                    self._queue.put(event)
        except PortlabError:
            pass  # the node went away: the stream's end says so below
        finally:
            tool.ended = True
            self._queue.put(None)  # wake the reader, who looks at what ended

    def _wait_ready(self) -> None:
        """Until each tcpdump says it is listening (conntrack says nothing: it subscribes at
        once). A tool that ends first is an error with its own words."""
        deadline = time.monotonic() + READY_SECONDS
        for tool in (t for t in self._tools if t.what == "tcpdump"):
            while "listening on" not in tool.stream.stderr:
                if tool.ended:
                    raise self._failed(tool)
                if time.monotonic() > deadline:
                    raise RuntimeProblem(f"tcpdump on {tool.node} did not start listening "
                                       f"within {READY_SECONDS:.0f} s",
                                       hint=f"try it by hand: portlab shell {tool.node}")
                time.sleep(0.05)
        time.sleep(0.2)  # conntrack: its subscription is made within a few milliseconds
        for tool in self._tools:
            if tool.ended:
                raise self._failed(tool)

    def _failed(self, tool: _Tool) -> PortlabError:
        words = tool.stream.stderr.strip().splitlines()
        said = "; ".join(w for w in words if "verbose output suppressed" not in w)[-300:]
        if tool.what == "tcpdump" and ("syntax error" in said or "expression" in said):
            return UsageError(f"tcpdump on {tool.node} does not understand the filter "
                              f"'{self.expr}': {said}",
                              hint="--filter takes a tcpdump expression, e.g. "
                                   "'tcp port 25565' or 'udp or icmp' (man pcap-filter)")
        if tool.stream.exit_code == 127 or "not found" in said:
            return RuntimeProblem(f"{tool.what} is not on {tool.node}: the lab runs a node "
                                  "image older than this portlab",
                                  hint="remove the lab and start it again (`portlab down`, "
                                       "then `portlab up`): it gets the current image")
        return RuntimeProblem(f"{tool.what} on {tool.node} stopped at once "
                            f"(exit code {tool.stream.exit_code}): {said or 'it said nothing'}",
                            hint=f"try it by hand: portlab shell {tool.node}")

    def stop(self) -> None:
        """End every tool on its node, and wait for the readers."""
        self._stopped.set()
        for tool in self._tools:
            try:
                tool.stream.stop()
            except Exception:  # a node that is gone has nothing left running
                pass
        for tool in self._tools:
            if tool.thread is not None:
                tool.thread.join(timeout=5)
        self._queue.put(None)

    def __enter__(self) -> Trace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reading ---
    def events(self, *, until: float | None = None) -> Iterator[ev.Event]:
        """Events as they come, until the trace stops, every tool ended, or time.monotonic()
        passes `until`."""
        while not self._stopped.is_set():
            wait = None if until is None else until - time.monotonic()
            if wait is not None and wait <= 0:
                return
            try:
                item = self._queue.get(timeout=0.25 if wait is None else min(wait, 0.25))
            except queue.Empty:
                continue
            if item is None:
                if self._tools and all(t.ended for t in self._tools):
                    self._drain_end()
                    return
                continue
            yield item

    def _drain_end(self) -> None:
        """Every tool ended by itself: the nodes stopped, or something killed them."""
        if self._stopped.is_set():
            return
        tool = self._tools[0]
        raise RuntimeProblem(f"the trace ended: {tool.what} on {tool.node} stopped "
                           f"(exit code {tool.stream.exit_code})",
                           hint="is the lab still up? `portlab status`")

    def drain(self, seconds: float) -> list[ev.Event]:
        """Every event of the next `seconds`."""
        return list(self.events(until=time.monotonic() + seconds))
