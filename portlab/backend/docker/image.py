"""The one node image every lab uses: build it, tag it by content, find it.

Two layers:

* base, `portlab/node-base:<hash>`: Debian bookworm with the packages in
  portlab/node/packages.txt. Built from Dockerfile.base on debian:bookworm-slim
  when a registry is reachable (the "registry" path), or, where none is (the
  "offline" path), as a root filesystem made by mmdebstrap from Debian's
  package mirrors and streamed into `docker import` (rootfs.py). Both read
  the same packages.txt and dpkg-excludes.
* node, `portlab/node:<hash>`: the base plus portlab's own tools
  (nodeinit.py, probe.py and its modules, serve.py, bashrc), put into a created container of
  the base and committed (nodelayer.py): about 2 s, no `docker build`.

Each tag is a hash of exactly what goes into it, so `up` rebuilds only what
changed, and a changed package list can never be mistaken for the old image.

Interrupted builds leave nothing half-built under a tag: a base is tagged
only after mmdebstrap exited 0 and its import completed, a node image only
by its commit. What an interrupted build can leave (the node build's
container, labelled `portlab.building=<repository>`; an untagged import,
labelled `portlab.import=<repository>`; a temp folder) is removed by the next
build and by `portlab prune`. Builds, and the image part of prune, hold one
machine-wide lock. Every build writes its tools' whole output to a log
(buildlog.py) that its errors name; the progress shows numbered steps with
last time's durations as the estimate.

`$PORTLAB_NODE_REPO` builds and finds the node layer under another
repository (tests build, kill and prune there without touching the real
images), `$PORTLAB_BASE_REPO` likewise the base (the cold benchmark); prune
then manages only the repositories so named.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker.errors

from portlab import locks
from portlab.backend.docker import buildlog, nodelayer, rootfs
from portlab.backend.docker import client as docker_api
from portlab.backend.docker.buildlog import BuildLog
from portlab.errors import RuntimeProblem, UsageError
from portlab.progress import Progress

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SUITE = "bookworm"
REGISTRY_BASE = "debian:bookworm-slim"
BASE_REPO = "portlab/node-base"
NODE_REPO = "portlab/node"
BASE_FILES = ("packages.txt", "dpkg-excludes", "slim.sh", "Dockerfile.base")
LABEL_BUILDING = nodelayer.LABEL_BUILDING
ROOTFS_PREFIX = "portlab-rootfs-"
REPO_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


def packages() -> list[str]:
    lines = (NODE_DIR / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def base_tag() -> str:
    parts = [SUITE.encode()] + [(NODE_DIR / f).read_bytes() for f in BASE_FILES]
    return f"{base_repo()}:{_digest(parts)}"


def _repo_from_env(variable: str, default: str) -> str:
    repo = os.environ.get(variable) or default
    if not REPO_NAME.match(repo) or len(repo) > 100:
        raise UsageError(f"{variable}='{repo}' is not a valid image repository name")
    return repo


def node_repo() -> str:
    """The node layer's repository: portlab/node, or $PORTLAB_NODE_REPO (for tests)."""
    return _repo_from_env("PORTLAB_NODE_REPO", NODE_REPO)


def base_repo() -> str:
    """The base's repository: portlab/node-base, or $PORTLAB_BASE_REPO (a cold benchmark)."""
    return _repo_from_env("PORTLAB_BASE_REPO", BASE_REPO)


def managed_repos() -> list[str]:
    """The repositories `portlab prune --images` manages: the default ones, or only the
    ones named in the environment (node layer first: children go before their base)."""
    repos = [node_repo(), base_repo()]
    named = [r for r, default in zip(repos, (NODE_REPO, BASE_REPO), strict=True) if r != default]
    return named or repos


def node_tag() -> str:
    parts = [base_tag().encode(), nodelayer.RECIPE.encode()]
    parts += [f.encode() + (NODE_DIR / f).read_bytes() for f in nodelayer.tools()]
    return f"{node_repo()}:{_digest(parts)}"


def exists(tag: str) -> bool:
    try:
        with docker_api.guard(f"looking up image {tag}"):
            try:
                docker_api.client().images.get(tag)
            except docker.errors.ImageNotFound:
                return False
        return True
    except RuntimeProblem as exc:
        raise type(exc)(f"cannot look up image {tag}: {exc.message}", hint=exc.hint) from None


def ensure(progress: Progress, *, offline: bool | None = None) -> str:
    """Return the node image tag, building whatever is missing."""
    tag = node_tag()
    if exists(tag):
        return tag
    with locks.build_lock():
        if not exists(tag):
            build(progress, offline=offline)
    return tag


def build(progress: Progress, *, offline: bool | None = None, force: bool = False) -> str:
    """Build the base (if missing or forced) and the node layer. Returns the node tag."""
    with locks.build_lock(), BuildLog() as log:
        remove_leftovers(managed_repos(), progress)
        base = base_tag()
        tag = node_tag()
        steps = 2 if force or not exists(base) else 1
        if steps == 2:
            if offline is None:
                offline = not _registry_reachable(progress)
            if offline:
                _build_base_offline(base, progress, log, steps)
            else:
                _build_base_registry(base, progress, log, steps)
        replaced = _image_id(tag)
        with _step(progress, log, steps, steps, "node",
                   f"adding portlab's tools to the base: {tag}"):
            nodelayer.build(tag, base, NODE_DIR, log=log, progress=progress)
        if replaced and replaced != _image_id(tag):
            remove_quietly(replaced)  # the image this tag named before (a forced rebuild)
    return tag


@contextmanager
def _step(progress: Progress, log: BuildLog, k: int, of: int, kind: str,
          title: str) -> Iterator[None]:
    """One numbered step of a build, with last time's duration as its estimate; remembers
    this one's."""
    start = time.monotonic()
    log.write(f"== [{k}/{of}] {title}")
    with progress.phase(f"[{k}/{of}] {title} ({buildlog.about(buildlog.estimate(kind))})"):
        yield
    took = time.monotonic() - start
    log.write(f"== done in {took:.1f}s")
    buildlog.remember(kind, took)


def _image_id(tag: str) -> str | None:
    with docker_api.guard(f"looking up image {tag}"):
        try:
            image_id: str = docker_api.client().images.get(tag).id
            return image_id
        except docker.errors.ImageNotFound:
            return None


def remove_quietly(image: str) -> bool:
    """Remove an image (by id), or one tag of it, unless a container uses it or it is gone.
    Whether it was removed."""
    with docker_api.guard(f"removing image {image}"):
        try:
            docker_api.client().images.remove(image)
            return True
        except docker.errors.APIError:  # in use (conflict), or already gone
            return False


def leftovers(repos: list[str]) -> list[Any]:
    """Images interrupted builds left for these repositories: dangling layers of node
    builds (`docker build`, before portlab committed its node layer) and untagged imports."""
    c = docker_api.client()
    found = []
    for label in (LABEL_BUILDING, rootfs.LABEL_IMPORT):
        found += docker_api.call("listing images", c.images.list,
                                 filters={"dangling": True, "label": label})
    return [img for img in found
            if (img.labels or {}).get(LABEL_BUILDING) in repos
            or (img.labels or {}).get(rootfs.LABEL_IMPORT) in repos]


def build_containers(repos: list[str]) -> list[Any]:
    """Containers an interrupted node build left (created, never started)."""
    c = docker_api.client()
    found = docker_api.call("listing containers", c.containers.list, all=True, sparse=True,
                            filters={"label": LABEL_BUILDING})
    return [x for x in found if (x.attrs.get("Labels") or {}).get(LABEL_BUILDING) in repos]


def remove_leftovers(repos: list[str], progress: Progress) -> list[str]:
    """Remove what interrupted builds left behind: build containers, untagged or dangling
    images, stale rootfs folders.

    Call with the build lock held, so that no build in progress loses a part.
    """
    removed = []
    for container in build_containers(repos):
        nodelayer.remove_container(container)
        removed.append(container.short_id)
        progress.detail(f"removed container {container.short_id}, left by an interrupted build")
    for img in leftovers(repos):
        if remove_quietly(img.id):
            removed.append(img.short_id)
            progress.detail(f"removed {img.short_id}, left by an interrupted build")
    tmp = Path(tempfile.gettempdir())
    for path in tmp.glob(ROOTFS_PREFIX + "*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
            progress.detail(f"removed {path}, left by an interrupted build")
    return removed


def _registry_reachable(progress: Progress) -> bool:
    c = docker_api.client()
    try:
        c.images.get(REGISTRY_BASE)
        return True
    except docker.errors.ImageNotFound:
        pass
    with progress.phase(f"looking for a registry (pulling {REGISTRY_BASE})"):
        try:
            c.images.pull(REGISTRY_BASE)
            return True
        except docker.errors.APIError as exc:
            progress.detail(f"no registry: {str(exc.explanation or exc)[:80]}")
            return False


def _build_base_registry(tag: str, progress: Progress, log: BuildLog, steps: int) -> None:
    with _step(progress, log, 1, steps, "base",
               f"Debian's packages on {REGISTRY_BASE} (registry path): {tag}"):
        api = docker_api.client().api
        labels = {docker_api.LABEL_IMAGE: "base"}
        try:
            stream = api.build(path=str(NODE_DIR), dockerfile="Dockerfile.base", tag=tag,
                               buildargs={"DEBIAN": REGISTRY_BASE}, rm=True, forcerm=True,
                               labels=labels, decode=True, pull=False)
            for chunk in stream:
                if "error" in chunk:
                    raise RuntimeProblem(f"building {tag} failed: {chunk['error'].strip()}",
                                         hint=f"the whole build log: {log.path}")
                line = chunk.get("stream") or chunk.get("status") or ""
                for part in line.splitlines():
                    if part.strip():
                        log.write(part)
                        progress.output(part)
                        if part.startswith("Step "):
                            progress.detail(part.split(":", 1)[0].lower())
        except docker.errors.APIError as exc:
            raise RuntimeProblem(f"building {tag} failed: {exc.explanation or exc}",
                                 hint=f"the whole build log: {log.path}") from None
        except docker_api.CONNECTION_ERRORS:
            raise docker_api.lost_connection(f"building {tag}") from None


def excludes() -> list[str]:
    """The dpkg path-exclude rules both build paths apply (portlab/node/dpkg-excludes)."""
    return [line.strip() for line in (NODE_DIR / "dpkg-excludes").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def _build_base_offline(tag: str, progress: Progress, log: BuildLog, steps: int) -> None:
    if shutil.which("mmdebstrap") is None:
        raise RuntimeProblem(
            "no container registry is reachable and mmdebstrap is not installed, so the node "
            "image cannot be built",
            hint="install it (`sudo apt-get install -y mmdebstrap`), or make a registry "
                 "reachable for the Dockerfile path",
        )
    changes = [f'LABEL {docker_api.LABEL_IMAGE}="base"', 'CMD ["bash"]',
               "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    with _step(progress, log, 1, steps, "base",
               f"Debian's packages into a root filesystem, offline with mmdebstrap: {tag}"):
        rootfs.build(tag, suite=SUITE, packages=packages(), excludes=excludes(),
                     slim=NODE_DIR / "slim.sh", changes=changes, log=log, progress=progress)
