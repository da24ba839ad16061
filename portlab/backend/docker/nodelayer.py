"""The node layer: portlab's own tools put on the base image, without `docker build`.

A `docker build` of one COPY and one RUN took 15 to 50 s here (every step is
a container and a commit on fuse-overlayfs, and the context is sent first).
The same result comes from one created (never started) container of the
base: the tools are copied into it as one tar archive, and it is committed
with the entrypoint and labels. That is one container and one commit, about
2 s, and it needs no registry either.

An interrupted build leaves at most that container, labelled
`portlab.building=<repository>`; the image is tagged only by the commit,
which is complete or does not happen. The next build (under the build lock)
and `portlab prune` remove such containers.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import docker.errors

from portlab.backend.docker import client as docker_api
from portlab.backend.docker.buildlog import BuildLog
from portlab.backend.docker.rootfs import LABEL_IMPORT
from portlab.errors import RuntimeProblem
from portlab.model import probekinds
from portlab.progress import Progress

# Every node has these; the probe kinds add the modules of portlab-probe that they run
# (each kind's KIND.node, portlab.model.probekinds.node_tools).
BASE_TOOLS = ("nodeinit.py", "probe.py", "serve.py", "answers.py", "mcproto.py", "savefile.py",
              "probeerror.py", "words.py", "portlab.sh", "fresh.sh", "bashrc")


def tools() -> tuple[str, ...]:
    """The files of portlab/node the node image is given."""
    return BASE_TOOLS + tuple(t for t in probekinds.node_tools() if t not in BASE_TOOLS)


LIB = "usr/local/lib/portlab"
LINKS = {"usr/local/bin/portlab": f"/{LIB}/portlab.sh",  # says to run portlab at home
         "usr/local/bin/portlab-probe": f"/{LIB}/probe.py",
         "usr/local/bin/portlab-serve": f"/{LIB}/serve.py",
         "usr/local/bin/portlab-fresh": f"/{LIB}/fresh.sh"}
DIRS = ("run/sshd",)
LABEL_BUILDING = "portlab.building"  # on a node build's container, until it is committed
# The image's config, set by the commit (the building and import labels cleared).
CHANGES = ['ENTRYPOINT ["python3", "/usr/local/lib/portlab/nodeinit.py"]', "CMD []",
           f'LABEL {LABEL_BUILDING}=""', f'LABEL {docker_api.LABEL_IMAGE}="node"',
           f'LABEL {LABEL_IMPORT}=""']
# What the layer is made of besides the files: part of the node tag, so a change here is a
# new image too.
RECIPE = f"nodelayer {LIB} {sorted(LINKS.items())} {DIRS} {CHANGES}"
HOLD_ENV = "PORTLAB_BUILD_HOLD"  # tests: seconds to wait with the build container made


def build(tag: str, base: str, node_dir: Path, *, log: BuildLog, progress: Progress) -> None:
    """Make `tag` from `base` plus the tools in node_dir. Raises RuntimeProblem."""

    def say(text: str) -> None:
        log.write(text)
        progress.detail(text)

    repo = tag.rpartition(":")[0]
    c = docker_api.client()
    name = f"portlab-build-{os.getpid()}-{time.monotonic_ns()}"
    container = None
    try:
        with docker_api.guard(f"building {tag}"):
            say("a container of the base, never started")
            container = c.containers.create(base, name=name, labels={LABEL_BUILDING: repo},
                                            network_disabled=True)
            hold = float(os.environ.get(HOLD_ENV) or 0)
            if hold > 0:
                time.sleep(hold)
            say(f"copying {', '.join(tools())} into it")
            bashrc = _read(container, "/root/.bashrc")
            archive = _archive(node_dir, bashrc)
            if not container.put_archive("/", archive):
                raise RuntimeProblem(f"building {tag} failed: Docker refused the tools' archive")
            say("committing it as the node image")
            container.commit(repository=repo, tag=tag.rpartition(":")[2], changes=CHANGES)
    except docker.errors.APIError as exc:
        log.write(f"failed: {exc}")
        raise RuntimeProblem(f"building {tag} failed: {exc.explanation or exc}",
                             hint=f"the whole build log: {log.path}") from None
    finally:
        if container is not None:
            remove_container(container)
        else:  # a signal cut the create call short: Docker may still be making it
            _remove_late(name)


def remove_container(container: object) -> None:
    """Remove a build container (an SDK object, or its name), if it is there."""
    try:
        if isinstance(container, str):
            docker_api.client().api.remove_container(container, force=True)
        else:
            container.remove(force=True)  # type: ignore[attr-defined]
    except (docker.errors.NotFound, docker.errors.APIError):
        pass


def _remove_late(name: str, patience: float = 3.0) -> None:
    """Remove the container `name` that a create call, cut short, may still be making: until
    it is gone and stays gone for a moment."""
    api = docker_api.client().api
    deadline = time.monotonic() + patience
    absent = 0
    while time.monotonic() < deadline and absent < 2:
        try:
            api.remove_container(name, force=True)
            absent = 0
        except docker.errors.NotFound:
            absent += 1
        except docker.errors.APIError:  # being created or removed right now
            absent = 0
        time.sleep(0.25)


def _read(container: object, path: str) -> bytes:
    """One file out of the (created) container, or b"" when the base has none."""
    try:
        chunks, _ = container.get_archive(path)  # type: ignore[attr-defined]
    except docker.errors.NotFound:
        return b""
    data = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                return f.read() if f is not None else b""
    return b""


def _archive(node_dir: Path, bashrc: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in (LIB, *DIRS):
            _dir(tar, d)
        for name in tools():
            data = (node_dir / name).read_bytes()
            _file(tar, f"{LIB}/{name}", data, 0o755 if name.endswith((".py", ".sh")) else 0o644)
        for link, target in LINKS.items():
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            info.mtime = int(time.time())
            tar.addfile(info)
        ours = (node_dir / "bashrc").read_bytes()
        _file(tar, "root/.bashrc", bashrc.rstrip(b"\n") + b"\n" + ours, 0o644)
    return buf.getvalue()


def _dir(tar: tarfile.TarFile, path: str) -> None:
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = int(time.time())
    tar.addfile(info)


def _file(tar: tarfile.TarFile, path: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
