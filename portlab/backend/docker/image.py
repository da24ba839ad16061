"""The one node image every lab uses: build it, tag it by content, find it.

Two layers:

* base, `portlab/node-base:<hash>`: Debian bookworm with the packages in
  portlab/node/packages.txt. Built from Dockerfile.base on debian:bookworm-slim
  when a registry is reachable (the "registry" path), or, where none is (the
  "offline" path), as a root filesystem made by mmdebstrap from Debian's
  package mirrors and loaded with `docker import`. Both read the same
  packages.txt and dpkg-excludes.
* node, `portlab/node:<hash>`: the base plus portlab's own tools
  (nodeinit.py, probe.py, serve.py), built with a local `docker build`
  that needs no registry.

Each tag is a hash of exactly what goes into it, so `up` rebuilds only what
changed, and a changed package list can never be mistaken for the old image.

Interrupted builds leave nothing half-built under a tag: Docker tags an image
only when its build is complete. The layers an interrupted node build did
finish carry the label `portlab.building=<repository>` (the Dockerfile sets
it first and clears it last); the next build reuses them as cache, and
whatever is still dangling after a build (or at `portlab prune`) is removed.
Builds, and the image part of prune, hold one machine-wide lock.

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
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import docker.errors

from portlab import locks
from portlab.backend.docker import children
from portlab.backend.docker import client as docker_api
from portlab.errors import RuntimeProblem, UsageError
from portlab.progress import Progress

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SUITE = "bookworm"
REGISTRY_BASE = "debian:bookworm-slim"
BASE_REPO = "portlab/node-base"
NODE_REPO = "portlab/node"
BASE_FILES = ("packages.txt", "dpkg-excludes", "Dockerfile.base")
NODE_FILES = ("Dockerfile", "nodeinit.py", "probe.py", "serve.py", "bashrc")
LABEL_BUILDING = "portlab.building"  # set on the layers of a node build until it completes
ROOTFS_PREFIX = "portlab-rootfs-"
REPO_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
DEBIAN_MIRROR = "http://deb.debian.org/debian"


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
    parts = [base_tag().encode()] + [(NODE_DIR / f).read_bytes() for f in NODE_FILES]
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
    with locks.build_lock():
        base = base_tag()
        if force or not exists(base):
            if offline is None:
                offline = not _registry_reachable(progress)
            if offline:
                _build_base_offline(base, progress)
            else:
                _build_base_registry(base, progress)
        tag = node_tag()
        replaced = _image_id(tag)
        with progress.phase(f"building {tag} (portlab's tools on the base)"):
            _docker_build(tag, "Dockerfile", {"BASE": base, "NODE_REPO": node_repo()}, progress,
                          kind="node")
        if replaced and replaced != _image_id(tag):
            remove_quietly(replaced)  # the image this tag named before (a forced rebuild)
        remove_leftovers([node_repo()], progress)
    return tag


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
    """Dangling layers of interrupted node builds for these repositories."""
    c = docker_api.client()
    found = docker_api.call("listing images", c.images.list,
                            filters={"dangling": True, "label": LABEL_BUILDING})
    return [img for img in found if (img.labels or {}).get(LABEL_BUILDING) in repos]


def remove_leftovers(repos: list[str], progress: Progress) -> list[str]:
    """Remove what interrupted builds left behind: dangling layers, stale rootfs folders.

    Call with the build lock held, so that no build in progress loses a layer.
    """
    removed = []
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


def _docker_build(tag: str, dockerfile: str, buildargs: dict[str, str], progress: Progress,
                  kind: str) -> None:
    api = docker_api.client().api
    labels = {docker_api.LABEL_IMAGE: kind}
    try:
        stream = api.build(path=str(NODE_DIR), dockerfile=dockerfile, tag=tag,
                           buildargs=buildargs, rm=True, forcerm=True, labels=labels,
                           decode=True, pull=False)
        for chunk in stream:
            if "error" in chunk:
                raise RuntimeProblem(f"building {tag} failed: {chunk['error'].strip()}")
            line = chunk.get("stream") or chunk.get("status") or ""
            for part in line.splitlines():
                if part.strip():
                    progress.detail(part)
    except docker.errors.APIError as exc:
        raise RuntimeProblem(f"building {tag} failed: {exc.explanation or exc}") from None
    except docker_api.CONNECTION_ERRORS:
        raise docker_api.lost_connection(f"building {tag}") from None


def _build_base_registry(tag: str, progress: Progress) -> None:
    with progress.phase(f"building {tag} from {REGISTRY_BASE} (registry path)"):
        _docker_build(tag, "Dockerfile.base", {"DEBIAN": REGISTRY_BASE}, progress, kind="base")


def apt_sources() -> str:
    """Debian sources for mmdebstrap: this machine's own, when it is a Debian of our suite.

    Returns deb822 text; falls back to deb.debian.org when the machine's
    sources do not name the suite (another distribution, another release).
    """
    entries = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = _deb822(stanza)
                suites = fields.get("suites", "").split()
                if "deb" in fields.get("types", "").split() and any(
                        s.startswith(SUITE) for s in suites) and fields.get("uris"):
                    entries.append(_stanza(fields))
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 3 and parts[0] == "deb":
                    opts = []
                    while parts[1].startswith("["):
                        opts.append(parts.pop(1))
                        if opts[-1].endswith("]"):
                            break
                    uri, suite, comps = parts[1], parts[2], parts[3:]
                    if suite.startswith(SUITE):
                        entries.append(f"Types: deb\nURIs: {uri}\nSuites: {suite}\n"
                                       f"Components: {' '.join(comps) or 'main'}\n")
    if not entries:
        entries.append(f"Types: deb\nURIs: {DEBIAN_MIRROR}\nSuites: {SUITE} {SUITE}-updates\n"
                       "Components: main\n")
    return "\n".join(entries)


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        fields[key] = value.strip()
    return fields


def _stanza(fields: dict[str, str]) -> str:
    keep = ("types", "uris", "suites", "components", "signed-by")
    names = {"types": "Types", "uris": "URIs", "suites": "Suites", "components": "Components",
             "signed-by": "Signed-By"}
    return "".join(f"{names[k]}: {fields[k]}\n" for k in keep if k in fields)


def _build_base_offline(tag: str, progress: Progress) -> None:
    if shutil.which("mmdebstrap") is None:
        raise RuntimeProblem(
            "no container registry is reachable and mmdebstrap is not installed, so the node "
            "image cannot be built",
            hint="install it (`sudo apt-get install -y mmdebstrap`), or make a registry "
                 "reachable for the Dockerfile path",
        )
    excludes = [line.strip() for line in (NODE_DIR / "dpkg-excludes").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    with tempfile.TemporaryDirectory(prefix=ROOTFS_PREFIX) as tmp:
        sources = Path(tmp) / "debian.sources"
        sources.write_text(apt_sources())
        tarball = Path(tmp) / "rootfs.tar"
        argv = ["mmdebstrap", "--variant=apt", "--mode=auto", "--format=tar",
                "--aptopt=APT::Install-Recommends \"false\"",
                f"--include={','.join(packages())}"]
        argv += [f"--dpkgopt={rule}" for rule in excludes]
        argv += [SUITE, str(tarball), str(sources)]
        with progress.phase(f"building {tag} with mmdebstrap from Debian's packages "
                            "(offline path, about a minute)"):
            _run_streaming(argv, progress)
        with progress.phase(f"importing {tag} into Docker"):
            changes = [f'LABEL {docker_api.LABEL_IMAGE}="base"', 'CMD ["bash"]',
                       "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
            repo, _, version = tag.partition(":")
            api = docker_api.client().api
            try:
                out = api.import_image_from_file(str(tarball), repository=repo, tag=version,
                                                 changes=changes)
            except docker.errors.APIError as exc:
                raise RuntimeProblem(f"docker import failed: {exc.explanation or exc}") from None
            if "error" in str(out).lower() and not exists(tag):
                raise RuntimeProblem(f"docker import failed: {out}")


def _run_streaming(argv: list[str], progress: Progress) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=children.preexec())
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith(("I:", "E:", "W:")):
                progress.detail(line.rstrip())
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    if code != 0:
        tail = "\n    ".join(lines[-15:])
        raise RuntimeProblem(f"{argv[0]} failed with exit code {code}:\n    {tail}")


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
