"""Several users on one Docker daemon (a classroom server), for real: two users' portlab.

The tests run as root; the second user is `nobody`, given the Docker socket's group (as a
user in the `docker` group has it). Neither sets $PORTLAB_SCOPE: each works in the scope of
their own login name.

* nobody's `down --all` and `prune` leave root's lab alone, and root's listing does not
  show nobody's; with the same $PORTLAB_SCOPE they would share (the session's own scope).
* The lock files root's portlab made (the image lock, the start slots) work for nobody,
  even one root made readable only: nobody's `up`, `prune` and image lock go through.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab import locks, names
from tests.integration.helpers import labelled, labs_path

ROOT = Path(__file__).resolve().parents[2]
LAB = "share-bits"
OTHER = 65534  # nobody


def socket_group() -> int:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert host.startswith("unix://"), "these tests need Docker's local socket"
    return os.stat(host[len("unix://"):]).st_gid


def as_user(uid: int | None, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`portlab ARGS` as root (uid None) or as another user, in that user's default scope."""
    base = {k: v for k, v in os.environ.items() if k != "PORTLAB_SCOPE"}
    argv = [sys.executable, "-m", "portlab", *args]
    if uid is not None:
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to act as another user"
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", f"--groups={socket_group()}",
                *argv]
        base.update(HOME="/tmp", PYTHONPATH=str(ROOT))
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd="/",
                          env={**base, **env})


@pytest.fixture(scope="module")
def env(node_image: str) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.fail("these tests act as a second user, which needs root (CI runs as root)")
    folder = Path(tempfile.mkdtemp(prefix="portlab-share-"))  # pytest's own is root's alone
    folder.chmod(0o755)
    lab = {"name": LAB, "title": "One node", "summary": "For two users.",
           "networks": {"lan": {"kind": "private"}},
           "nodes": {"a": {"interfaces": {"lan": {"network": "lan", "host": 1}}}},
           "checks": [{"id": "quiet", "title": "nothing listens on 9",
                       "probes": [{"kind": "listening", "from": "a", "port": 9,
                                   "expect": {"listening": False}}]}]}
    found = labs_path(folder, lab)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        yield found
    finally:
        for uid in (None, OTHER):
            as_user(uid, "down", "--instance", f"share-{'nobody' if uid else 'root'}", env=found)
        shutil.rmtree(folder, ignore_errors=True)


def instances(uid: int | None, env: dict[str, str]) -> list[str]:
    proc = as_user(uid, "status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return [i["instance"] for i in json.loads(proc.stdout)["instances"]]


def test_each_user_has_a_scope_of_their_own(env: dict[str, str]) -> None:
    assert names.user_scope(0) == "root" and names.user_scope(OTHER) == "nobody"
    mine = as_user(None, "up", LAB, "--instance", "share-root", env=env)
    assert mine.returncode == 0, mine.stderr
    theirs = as_user(OTHER, "up", LAB, "--instance", "share-nobody", env=env)
    assert theirs.returncode == 0, theirs.stderr
    assert "share-root" in instances(None, env) and "share-nobody" not in instances(None, env)
    assert instances(OTHER, env) == ["share-nobody"]

    # nobody clears everything of theirs: root's lab is not theirs to touch
    down = as_user(OTHER, "down", "--all", env=env)
    assert down.returncode == 0 and ": 1 container and" in down.stdout, down.stderr
    pruned = as_user(OTHER, "prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert instances(OTHER, env) == [] and "share-root" in instances(None, env)
    status = as_user(None, "status", "--instance", "share-root", env=env)
    assert "share-root  lab share-bits, running" in status.stdout
    assert as_user(None, "down", "--instance", "share-root", env=env).returncode == 0
    assert labelled("share-root") == {"containers": [], "networks": []}


def test_lock_files_another_user_made_work(env: dict[str, str]) -> None:
    folder = locks.lock_dir()  # made by root's portlab in the test above, for everyone
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1777
    image_lock = folder / "image.lock"
    with locks.build_lock():  # root makes it now if no build did yet
        pass
    assert image_lock.stat().st_uid == 0
    image_lock.chmod(0o644)  # as a portlab of before, or a strict umask, left it
    try:
        code = ("from portlab import locks\n"
                "with locks.build_lock():\n"
                "    print('held the image lock')\n")
        proc = subprocess.run(["setpriv", f"--reuid={OTHER}", f"--regid={OTHER}",
                               "--clear-groups", sys.executable, "-c", code],
                              capture_output=True, text=True, timeout=60, cwd="/",
                              env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/tmp"})
        assert proc.returncode == 0 and proc.stdout == "held the image lock\n", proc.stderr
        up = as_user(OTHER, "up", LAB, "--instance", "share-nobody", env=env)
        assert up.returncode == 0, up.stderr  # the start slots root made work for nobody
        pruned = as_user(OTHER, "prune", env=env)  # prune holds the image lock too
        assert pruned.returncode == 0 and "Removed 1 container and" in pruned.stdout, pruned.stderr
    finally:
        image_lock.chmod(0o666)
