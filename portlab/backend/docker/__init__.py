"""The Docker backend: Docker Engine through its SDK, and Compose (v2 plugin or v1).

    client      the connection, its errors, portlab's labels
    compose     which Compose is installed, and running it (started ahead of time)
    render      a plan as a Compose file
    instances   list (by labels), start, remove
    nodes       exec (plain and streaming), copy, logs, attach
    image       the node image: built from a registry or offline, tagged by content
    prune       everything of a scope, and what interrupted builds left
    host        what Docker says about itself and its host (portlab doctor), a throwaway node

`DockerBackend` implements portlab.backend.base.Backend over them. Its modules
are imported on first use: `portlab up` starts Compose (early_start) before
the Docker SDK has even loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, NoReturn

from portlab.backend.base import (
    EngineFacts,
    ExecResult,
    FileCopy,
    InstanceInfo,
    NodeInfo,
    NodeProbe,
    Pruned,
    Removed,
    Stream,
    Terminal,
)
from portlab.backend.docker import doctor as engine_doctor
from portlab.errors import PortlabError

if TYPE_CHECKING:
    from portlab.model.plan import Plan
    from portlab.progress import Progress


class DockerBackend:
    name = "docker"
    ENGINE_CHECKS = engine_doctor.CHECKS
    data_root = engine_doctor.DEFAULT_ROOT

    # --- the node image ---
    def image_tag(self) -> str:
        from portlab.backend.docker import image

        return image.node_tag()

    def image_exists(self, ref: str) -> bool:
        from portlab.backend.docker import image

        return image.exists(ref)

    def ensure_image(self, progress: Progress, *, offline: bool | None = None) -> str:
        from portlab.backend.docker import image

        return image.ensure(progress, offline=offline)

    def build_image(self, progress: Progress, *, offline: bool | None = None,
                    force: bool = False) -> str:
        from portlab.backend.docker import image

        return image.build(progress, offline=offline, force=force)

    # --- instances ---
    def instances(self) -> dict[str, InstanceInfo]:
        from portlab.backend.docker import instances

        return instances.instances()

    def nodes(self, instance: str) -> dict[str, NodeInfo]:
        from portlab.backend.docker import instances

        return instances.nodes(instance)

    def taken_subnets(self) -> list[IPv4Network]:
        from portlab.backend.docker import instances

        return instances.taken_subnets()

    def lab_subnets(self) -> list[tuple[IPv4Network, str]]:
        from portlab.backend.docker import instances

        return instances.lab_subnets()

    def render(self, plan: Plan) -> str:
        from portlab.backend.docker import models

        return models.compose(plan)

    def early_start(self, instance: str) -> AbstractContextManager[object | None]:
        """With Compose ($PORTLAB_CREATE=compose): Compose itself, started at once; through
        the API (the default) there is nothing to start early."""
        import os

        if os.environ.get("PORTLAB_CREATE", "api") != "compose":
            return nullcontext()
        from portlab.backend.docker import compose

        return compose.ahead(compose.project_name(instance), compose.UP_ARGS)

    def start(self, plan: Plan, progress: Progress, early: object | None = None) -> InstanceInfo:
        from portlab.backend.docker import compose, instances

        return instances.start(plan, early if isinstance(early, compose.Ahead) else None)

    def remove(self, instance: str, progress: Progress) -> Removed:
        from portlab.backend.docker import instances

        return instances.remove(instance, progress)

    def prune(self, progress: Progress, *, images: bool = False, current: bool = False,
              dry_run: bool = False) -> Pruned:
        from portlab.backend.docker import prune

        return prune.prune(progress, images=images, current=current, dry_run=dry_run)

    # --- nodes ---
    def exec(self, node: NodeInfo, argv: Sequence[str]) -> ExecResult:
        from portlab.backend.docker import nodes

        return nodes.exec_in(node, argv)

    def stream(self, node: NodeInfo, argv: Sequence[str]) -> Stream:
        from portlab.backend.docker import nodes

        return nodes.DockerStream(node, argv)

    def copy(self, node: NodeInfo, files: Mapping[str, FileCopy]) -> None:
        from portlab.backend.docker import nodes

        nodes.copy(node, files)

    def logs(self, node: NodeInfo, *, follow: bool = False,
             tail: int | None = None) -> Iterator[bytes]:
        from portlab.backend.docker import nodes

        return nodes.logs(node, follow=follow, tail=tail)

    def processes(self, node: NodeInfo) -> int:
        from portlab.backend.docker import nodes

        return nodes.processes(node)

    def written(self, node: NodeInfo) -> int:
        from portlab.backend.docker import nodes

        return nodes.written(node)

    def attach(self, node: NodeInfo, argv: Sequence[str], *, tty: bool,
               env: Mapping[str, str] | None = None) -> NoReturn:
        from portlab.backend.docker import nodes

        nodes.attach(node, argv, tty=tty, env=env)

    def terminal(self, node: NodeInfo, argv: Sequence[str], *, rows: int, cols: int,
                 env: Mapping[str, str] | None = None) -> Terminal:
        from portlab.backend.docker import nodes

        return nodes.DockerTerminal(node, argv, rows=rows, cols=cols, env=env)

    # --- the host (portlab doctor) ---
    def facts(self) -> EngineFacts:
        from portlab.backend.docker import host

        return host.facts()

    def probe_node(self) -> NodeProbe:
        from portlab.backend.docker import host

        return host.probe_node()

    # --- errors ---
    def explain(self, exc: BaseException) -> PortlabError | None:
        from portlab.backend.docker import client

        return client.connection_problem(exc)
