"""Commands and files on a node container: exec (plain and streaming), copy, logs, attach.

Containers are reached by the id the listing gave (no inspect, no `docker
compose exec`), through the low-level API, which is what `docker exec` does.
A streamed command records its pid on the node (in /run/portlab/streams), so
that stopping the stream ends it there too: Docker has no way to stop an
exec, and a tcpdump left behind would run until the lab is removed.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

import docker.errors

from portlab.backend.base import ExecResult, FileCopy, NodeInfo
from portlab.backend.docker import client as docker_api
from portlab.errors import RuntimeProblem

STREAMS = "/run/portlab/streams"


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


OUTPUT_KEPT = 1 << 20  # bytes of each of a command's stdout and stderr kept: the last ones


class Tail:
    """The last `size` bytes of a stream, however much goes through: memory stays flat
    whatever a node prints (a submission's output, a garbled tool)."""

    def __init__(self, size: int = OUTPUT_KEPT) -> None:
        self.size = size
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes | None) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        self.data += chunk[-self.size:]
        if len(self.data) > self.size:
            del self.data[:len(self.data) - self.size]

    def text(self) -> str:
        return _text(bytes(self.data))


def exec_in(node: NodeInfo, argv: Sequence[str]) -> ExecResult:
    """Run argv in the node's container (no shell on the host side) and collect the end of its
    output (OUTPUT_KEPT bytes of each stream, read as it comes)."""
    api = docker_api.client().api
    out, err = Tail(), Tail()
    with docker_api.guard(f"running {argv[0]} on {node.name}"):
        exec_id = api.exec_create(node.ref, list(argv), stdout=True, stderr=True)["Id"]
        try:
            for frame_out, frame_err in api.exec_start(exec_id, stream=True, demux=True):
                out.add(frame_out)
                err.add(frame_err)
        except ValueError:
            # docker-py read a frame header that is none ("52 is not a valid stream"): the
            # stream lost its framing, seen with 50 labs checked at once. Its output is lost,
            # as in moby/moby#27289; the command itself runs on. Callers that cannot do
            # without the output read what the command saved (probes.common.tool_on).
            out, err = Tail(), Tail()
            _until_done(api, exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
    return ExecResult(exit_code=code if code is not None else -1, stdout=out.text(),
                      stderr=err.text())


EXEC_PATIENCE = 900.0  # seconds: a guard, waiting for a command whose output was lost


def _until_done(api: Any, exec_id: str) -> None:
    deadline = time.monotonic() + EXEC_PATIENCE
    while api.exec_inspect(exec_id).get("Running") and time.monotonic() < deadline:
        time.sleep(0.05)


class DockerStream:
    """A command on a node, read line by line as it writes (see backend.base.Stream)."""

    def __init__(self, node: NodeInfo, argv: Sequence[str]) -> None:
        self.node = node
        self.argv = list(argv)
        self._id = uuid.uuid4().hex
        self._pidfile = f"{STREAMS}/{self._id}.pid"
        self._err: list[bytes] = []
        self._code: int | None = None
        self._stopped = False
        api = docker_api.client().api
        # The shell writes its pid, then becomes the command (exec): the pid is the command's.
        wrapped = ["sh", "-c", f'mkdir -p {STREAMS} && echo $$ > "$0" && exec "$@"',
                   self._pidfile, *self.argv]
        with docker_api.guard(f"running {self.argv[0]} on {node.name}"):
            self._exec = api.exec_create(node.ref, wrapped, stdout=True, stderr=True)["Id"]
            self._frames: Any = api.exec_start(self._exec, stream=True, demux=True)

    def __iter__(self) -> Iterator[str]:
        buf = b""
        with docker_api.guard(f"reading the output of {self.argv[0]} on {self.node.name}"):
            for out, err in self._frames:
                if err:
                    self._err.append(err)
                if not out:
                    continue
                buf += out
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    yield _text(line).rstrip("\r")
        if buf:
            yield _text(buf).rstrip("\r")
        self._finish()

    def _finish(self) -> None:
        if self._code is None:
            with docker_api.guard(f"looking at {self.argv[0]} on {self.node.name}"):
                info = docker_api.client().api.exec_inspect(self._exec)
            if not info.get("Running"):
                self._code = info.get("ExitCode")

    @property
    def exit_code(self) -> int | None:
        return self._code

    @property
    def stderr(self) -> str:
        return _text(b"".join(self._err))

    def stop(self) -> None:
        """End the command on the node: TERM, then KILL after two seconds; remove its pid file."""
        if self._stopped:
            return
        self._stopped = True
        _end_on_node(self.node, self._pidfile,
                     'for i in $(seq 40); do [ -s "$1" ] && break; sleep 0.05; done; '
                     'p=$(cat "$1" 2>/dev/null) || exit 0; '
                     'kill -TERM "$p" 2>/dev/null; '
                     'for i in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done; '
                     'kill -KILL "$p" 2>/dev/null')
        try:
            self._frames.close()
        except Exception:  # closing a cut stream may raise anything
            pass
        try:
            self._finish()
        except RuntimeProblem:
            pass

    def __enter__(self) -> DockerStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_on_node(node: NodeInfo, pidfile: str, script: str) -> None:
    """Run `script` on the node to end what the pid in `pidfile` ($1) started, then remove
    the pid file. A node (or Docker) that is gone has nothing left to end."""
    try:
        exec_in(node, ["sh", "-c", f'{script}; rm -f "$1"; true', "sh", pidfile])
    except RuntimeProblem:
        pass


class DockerTerminal:
    """A program on a node with a TTY of its own, driven through the exec's socket (what
    `docker exec -it` does, without the docker command): see backend.base.Terminal. Its
    pid is recorded on the node, as a stream's is, so that `close()` ends its whole session
    there (the shell and whatever runs in it), not only the connection."""

    def __init__(self, node: NodeInfo, argv: Sequence[str], *, rows: int, cols: int,
                 env: Mapping[str, str] | None = None) -> None:
        self.node = node
        self._pidfile = f"{STREAMS}/{uuid.uuid4().hex}.pid"
        self._closed = False
        api = docker_api.client().api
        wrapped = ["sh", "-c", f'mkdir -p {STREAMS} && echo $$ > "$0" && exec "$@"',
                   self._pidfile, *argv]
        with docker_api.guard(f"opening a terminal on {node.name}"):
            self._exec = api.exec_create(node.ref, wrapped, stdin=True, tty=True,
                                         environment=dict(env or {}))["Id"]
            raw: Any = api.exec_start(self._exec, tty=True, socket=True)
        self._sock: Any = getattr(raw, "_sock", raw)  # the socket under docker's wrapper
        self._raw = raw
        self._sock.setblocking(False)
        self.resize(rows, cols)

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def read(self) -> bytes | None:
        try:
            return bytes(self._sock.recv(65536))
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        self._sock.setblocking(True)
        try:
            self._sock.sendall(data)
        except OSError:
            pass  # the program ended: its output says so
        finally:
            self._sock.setblocking(False)

    def resize(self, rows: int, cols: int) -> None:
        with docker_api.guard(f"resizing a terminal on {self.node.name}"):
            try:
                docker_api.client().api.exec_resize(self._exec, height=rows, width=cols)
            except docker.errors.APIError:
                pass  # the program ended meanwhile

    def close(self) -> None:
        """Hang up: the program's whole session gets SIGHUP, then SIGKILL a moment later."""
        if self._closed:
            return
        self._closed = True
        _end_on_node(self.node, self._pidfile,
                     'p=$(cat "$1" 2>/dev/null) || exit 0; '
                     'pkill -HUP -s "$p" 2>/dev/null; '
                     'for i in $(seq 20); do pgrep -s "$p" >/dev/null || break; sleep 0.05; done; '
                     'pkill -KILL -s "$p" 2>/dev/null')
        for close in (self._sock.close, self._raw.close):
            try:
                close()
            except Exception:  # closing a cut connection may raise anything
                pass


def copy(node: NodeInfo, files: Mapping[str, FileCopy]) -> None:
    """Put files on the node, as root, making the folders they go in: one archive, unpacked
    at the node's `/` (Docker makes a missing folder on the way, root's and 0755, as
    `mkdir -p` would: no exec is needed first)."""
    for path in files:
        if not path.startswith("/") or ".." in path.split("/"):
            raise RuntimeProblem(f"cannot copy to '{path}' on {node.name}: not an absolute path")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path, item in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(item.content)
            info.mode = item.mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(item.content))
    where = ", ".join(sorted({posixpath.dirname(p) for p in files}))
    with docker_api.guard(f"copying files to {where} on {node.name}"):
        docker_api.client().api.put_archive(node.ref, "/", archive.getvalue())


def logs(node: NodeInfo, *, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
    """The container's log, stdout and stderr as they came; with follow, until it stops."""
    api = docker_api.client().api
    with docker_api.guard(f"reading the log of {node.name}"):
        if follow:
            yield from api.logs(node.ref, stdout=True, stderr=True, stream=True, follow=True,
                                tail="all" if tail is None else tail)
        else:
            yield api.logs(node.ref, stdout=True, stderr=True,
                           tail="all" if tail is None else tail)


def processes(node: NodeInfo) -> int:
    """The processes of the node's container. Where the engine is on this machine, the lines
    of its cgroup's `cgroup.procs` (what `docker top` lists, without dockerd running the
    host's `ps` over every process of the machine: a grade counts each second); else
    `docker top`."""
    group = _local(node).cgroup
    if group:
        try:
            return _procs_in(group)
        except OSError:
            pass  # gone, or not ours to read: Docker's own count below
    api = docker_api.client().api
    with docker_api.guard(f"counting the processes of {node.name}"):
        return len(api.top(node.ref).get("Processes") or [])


CGROUP_ROOT = "/sys/fs/cgroup"


def _procs_in(group: str) -> int:
    """Processes in the cgroup directory `group` and the groups below it."""
    total, stack = 0, [group]
    while stack:
        top = stack.pop()
        with open(os.path.join(top, "cgroup.procs"), "rb") as procs:
            total += sum(1 for line in procs if line.strip())
        with os.scandir(top) as entries:
            stack += [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    return total


def _cgroup_dir(pid: int) -> str:
    """The directory of process `pid`'s cgroup that counts processes: cgroup v1's `pids`
    hierarchy, or v2's single one; "" when none can be read."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as found:
            lines = found.read().splitlines()
    except OSError:
        return ""
    for want in ("pids", ""):  # v1's pids controller first, else v2's unified line (0::)
        for line in lines:
            _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
            if want and want not in controllers.split(","):
                continue
            if not want and controllers:
                continue
            base = os.path.join(CGROUP_ROOT, "pids" if want else "")
            group = os.path.normpath(os.path.join(base, path.lstrip("/")))
            if group.startswith(CGROUP_ROOT + "/") and \
                    os.access(os.path.join(group, "cgroup.procs"), os.R_OK):
                return group
    return ""


def written(node: NodeInfo) -> int:
    """The container's writable layer, in bytes: what Docker's SizeRw (`docker ps --size`)
    counts. Docker computes SizeRw beside SizeRootFs, a walk of the whole root file system
    (measured: 1.2 s and most of a grade's disk look, through fuse-overlayfs). Where the
    engine is on this machine and its upper directory can be read, only that directory (the
    files the node wrote) is walked here; else Docker is asked."""
    upper = _local(node).upper
    if upper:
        try:
            return _tree_size(upper)
        except OSError:
            pass  # gone, or not ours to read: Docker's own count below
    api = docker_api.client().api
    with docker_api.guard(f"looking at the disk use of {node.name}"):
        found = api._result(api._get(api._url("/containers/{0}/json", node.ref),
                                     params={"size": 1}), True)
    return int(found.get("SizeRw") or 0)


LOCAL_ENGINE = "http+docker://localhost"  # the SDK's address of an engine on a unix socket


class Local(NamedTuple):
    """What of a container this machine can read itself, where the engine is local."""
    upper: str = ""  # its writable layer's directory ("" where none can be read)
    cgroup: str = ""  # its cgroup's directory that counts processes ("" where none)


_LOCAL: dict[str, Local] = {}  # container -> what of it can be read here


def _local(node: NodeInfo) -> Local:
    """From one inspect of the container: its writable layer's directory, from the engine's
    GraphDriver data (overlay2, fuse-overlayfs), and its cgroup, from its first process.
    Nothing when the engine is not on this machine, or this user cannot read them."""
    if node.ref in _LOCAL:
        return _LOCAL[node.ref]
    api = docker_api.client().api
    found: Local = Local()
    if api.base_url == LOCAL_ENGINE:
        with docker_api.guard(f"looking at {node.name}"):
            data = api.inspect_container(node.ref)
        path = str(((data.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir") or "")
        upper = path if path.startswith("/") and os.access(path, os.R_OK | os.X_OK) and \
            os.path.isdir(path) and not os.path.islink(path) else ""
        pid = int((data.get("State") or {}).get("Pid") or 0)
        found = Local(upper, _cgroup_dir(pid) if pid > 0 else "")
    if len(_LOCAL) > 4096:
        _LOCAL.clear()
    _LOCAL[node.ref] = found
    return found


def _tree_size(top: str) -> int:
    """Bytes in the files under `top`, as Docker counts a layer: every entry but directories,
    a file with several links once; never following a link (the tree is the node's)."""
    total, seen, stack = 0, set(), [top]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                st = entry.stat(follow_symlinks=False)
                if st.st_nlink > 1:
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                total += st.st_size
    return total


def attach(node: NodeInfo, argv: Sequence[str], *, tty: bool,
           env: Mapping[str, str] | None = None) -> NoReturn:
    """Become `docker exec` on the node: the terminal, signals and exit code are its own."""
    path = shutil.which("docker")
    if path is None:
        raise RuntimeProblem("the `docker` command is not installed (needed for shells and exec)")
    flags = ["-it"] if tty else ["-i"]
    for key, value in (env or {}).items():
        flags += ["-e", f"{key}={value}"]
    os.execv(path, ["docker", "exec", *flags, node.ref, *argv])
