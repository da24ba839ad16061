"""`portlab prune`: remove what portlab left behind, and nothing else.

Containers and networks belong to a scope ($PORTLAB_SCOPE): prune removes
every one that carries this scope's label (`portlab.scope`), whichever
instance it belongs to, half-started and broken ones and strays without an
instance label included, and the scope's instance lock files that a
`portlab up` killed outright left (locks.forget_stale). Objects of other
scopes, and anything without portlab's labels, are never touched.

Images are shared by every scope, so prune is more careful with them:

* always: what an interrupted build left behind (the node layer's container,
  label `portlab.building`; an untagged import, label `portlab.import`; see
  image.py) and stale mmdebstrap folders;
* with `images=True`: tagged images of portlab's repositories (portlab/node,
  portlab/node-base) that no container uses, of any scope, running or
  stopped, portlab's or not, except the two this version of portlab uses;
* with `current=True` as well: those two too (the next `up` builds them again).

Only the repositories' own tags are removed: an image that also carries
another tag keeps it. Image removal holds the build lock, so it never races
a build, and never forces: Docker refuses to remove an image in use.
"""

from __future__ import annotations

from typing import Any

import docker.errors

from portlab import locks
from portlab.backend.base import Pruned
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import image, instances
from portlab.progress import Progress


def prune(progress: Progress, *, images: bool = False, current: bool = False,
          dry_run: bool = False) -> Pruned:
    out = Pruned(dry_run=dry_run)
    _prune_scope(out, progress, dry_run)
    if not dry_run:
        locks.forget_stale(docker_api.scope())  # lock files of `up`s that were killed outright
    with locks.build_lock():
        repos = image.managed_repos()
        if dry_run:
            out.leftovers = [x.short_id for x in image.build_containers(repos)]
            out.leftovers += [img.short_id for img in image.leftovers(repos)]
        else:
            out.leftovers = image.remove_leftovers(repos, progress)
        unused = unused_images(keep_current=not current)
        if images:
            for tag in unused:
                if dry_run or image.remove_quietly(tag):
                    out.images.append(tag)
                    progress.detail(f"removed image {tag}")
        else:
            out.kept_images = unused
    return out


def _prune_scope(out: Pruned, progress: Progress, dry_run: bool) -> None:
    """Every container and network labelled with this scope, by instance first."""
    c = docker_api.client()
    scope = docker_api.scope_filter()
    containers = docker_api.call("listing containers", c.containers.list, all=True, sparse=True,
                                 filters=scope)
    networks = docker_api.call("listing networks", c.networks.list, filters=scope)
    out.containers = sorted(_name(x) for x in containers)
    out.networks = sorted(n.name for n in networks)
    out.instances = sorted({docker_api.labels_of(x).get(docker_api.LABEL_INSTANCE, "")
                            for x in containers}
                           | {(n.attrs.get("Labels") or {}).get(docker_api.LABEL_INSTANCE, "")
                              for n in networks} - {""})
    if dry_run:
        return
    for name in out.instances:
        instances.remove(name, progress)
    # Strays: labelled with the scope but with no (or an unreadable) instance.
    with docker_api.guard("removing leftovers"):
        for obj in c.containers.list(all=True, sparse=True, filters=scope):
            try:
                obj.remove(force=True)
            except docker.errors.NotFound:
                pass
        for net in c.networks.list(filters=scope):
            try:
                net.remove()
            except docker.errors.NotFound:
                pass


def _name(container: Any) -> str:
    names = container.attrs.get("Names") or [container.id[:12]]
    return str(names[0]).lstrip("/")


def unused_images(*, keep_current: bool = True) -> list[str]:
    """Tags in portlab's repositories whose image no container (of any scope) uses."""
    c = docker_api.client()
    in_use = {row.get("ImageID") for row in
              docker_api.call("listing containers", c.api.containers, all=True)}
    keep = {image.node_tag(), image.base_tag()} if keep_current else set()
    tags: list[str] = []
    for repo in image.managed_repos():  # node before base: children go first
        for img in docker_api.call("listing images", c.images.list, name=repo):
            if img.id in in_use or docker_api.LABEL_IMAGE not in (img.labels or {}):
                continue
            tags += sorted(t for t in img.tags if t.rsplit(":", 1)[0] == repo and t not in keep)
    return tags
