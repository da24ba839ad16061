"""Create an instance through the Docker API: the same networks and containers as its Compose file.

`models.compose(plan)` is the instance as a Compose file (what `portlab render`
prints, and what plain Compose starts on its own). Starting it here makes the
very same objects from the very same models (`models.service_model`,
`models.network_model`, `models.grader_model`) by API calls, without a Compose
process: Compose v1 is a Python program, and its start-up and its own
bookkeeping cost more CPU than the lab's own creation on a small machine
(docs/scaling.md has the figures). Objects carry Compose's project and
service labels too, so `docker compose -p PROJECT` sees them as its own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors
import docker.types

from portlab import __version__
from portlab.backend.base import SubnetTaken
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import models
from portlab.backend.docker.compose import project_name
from portlab.errors import RuntimeProblem
from portlab.model.plan import Plan

CAPS = ["NET_ADMIN", "NET_RAW"]


def _compose_labels(project: str, service: str | None = None) -> dict[str, str]:
    labels = {"com.docker.compose.project": project, "com.docker.compose.version": "portlab"}
    if service is not None:
        labels.update({"com.docker.compose.service": service,
                       "com.docker.compose.container-number": "1",
                       "com.docker.compose.oneoff": "False"})
    return labels


def create(plan: Plan) -> Callable[[], None]:
    """Create and start the plan's networks and containers, and start the seal. Returns what
    waits for the seal to end (raising RuntimeProblem unless it sealed the host off): the
    caller may do other work meanwhile, and must call it before the lab is used. Raises
    SubnetTaken when Docker refuses a subnet (someone took it since it was allocated),
    RuntimeProblem otherwise."""
    c = docker_api.client()
    project = project_name(plan.instance)
    real = [n.name for n in plan.lab.networks if not n.virtual]
    # Side by side, as Compose v2 does: the networks, then the nodes, then their start.
    with ThreadPoolExecutor(max_workers=8) as pool:
        with docker_api.guard(f"creating the networks of instance '{plan.instance}'"):
            networks = dict(zip(real, pool.map(lambda n: _network(c, plan, n, project), real),
                                strict=True))  # lab network -> Docker network name
        names = [n.name for n in plan.lab.nodes]
        seal = models.seal_model(plan)
        with docker_api.guard(f"creating the nodes of instance '{plan.instance}'"):
            sealer = pool.submit(_sealer, c, plan, seal, project) if seal is not None else None
            ids = dict(zip(names, pool.map(lambda n: _node(c, plan, n, project, networks),
                                           names), strict=True))
            graders = {g: _grader(c, plan, g, project, ids[g]) for g in plan.graders}
            seal_id = sealer.result() if sealer is not None else ""
        with docker_api.guard(f"starting the nodes of instance '{plan.instance}'"):
            list(pool.map(c.api.start, ids.values()))
            list(pool.map(c.api.start, graders.values()))
    if seal is None:
        return lambda: None
    guard = f"sealing the host off the networks of instance '{plan.instance}'"
    with docker_api.guard(guard):
        c.api.start(seal_id)  # once the nodes run: their ports are on the bridges

    def sealed() -> None:
        with docker_api.guard(guard):
            _seal(c, plan, seal, seal_id)

    return sealed


def _network(c: Any, plan: Plan, lab_net: str, project: str) -> str:
    """Create one lab network; its Docker name. SubnetTaken when its subnet is in use."""
    model = models.network_model(plan, lab_net)
    name = f"{project}_{lab_net}"
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=model["subnet"], gateway=model["gateway"])])
    try:
        c.api.create_network(name, driver="bridge", ipam=ipam, options=model["options"],
                             labels={**model["labels"], **_compose_labels(project),
                                     "com.docker.compose.network": lab_net},
                             check_duplicate=True)
    except docker.errors.APIError as exc:
        said = str(exc.explanation or exc)
        if "overlap" in said.lower():
            raise SubnetTaken(said) from None
        raise
    return name


def _node(c: Any, plan: Plan, name: str, project: str, networks: dict[str, str]) -> str:
    node = plan.lab.node(name)
    assert node is not None
    model = models.service_model(plan, node)
    first, *rest = model["networks"]
    endpoint = c.api.create_endpoint_config(ipv4_address=first["address"])
    limits: dict[str, Any] = {}
    if model["limits"]:
        fsize = model["limits"]["fsize"]
        limits = {"pids_limit": model["limits"]["pids"], "mem_limit": model["limits"]["memory"],
                  "memswap_limit": model["limits"]["memory"],
                  "nano_cpus": int(model["limits"]["cpus"] * 1e9),
                  "ulimits": [docker.types.Ulimit(name="fsize", soft=fsize, hard=fsize)]}
    host = c.api.create_host_config(
        init=True, cap_add=CAPS, sysctls=model["sysctls"], devices=model["devices"] or None,
        extra_hosts=model["extra_hosts"], network_mode=networks[first["name"]],
        log_config=docker.types.LogConfig(type="json-file", config=model["log"]), **limits)
    created = c.api.create_container(
        plan.image, name=f"{project}_{name}_1", hostname=name, environment=model["environment"],
        labels={**model["labels"], **_compose_labels(project, name)}, host_config=host,
        networking_config=c.api.create_networking_config({networks[first["name"]]: endpoint}),
        stop_timeout=1)
    for net in rest:
        c.api.connect_container_to_network(created["Id"], networks[net["name"]],
                                           ipv4_address=net["address"])
    return str(created["Id"])


def _sealer(c: Any, plan: Plan, seal: dict[str, Any], project: str) -> str:
    """Create the seal's one-shot container (models.SEAL_SCRIPT), beside the nodes; its id."""
    host = c.api.create_host_config(network_mode="host", cap_add=["NET_ADMIN"],
                                    cap_drop=["ALL"])
    created = c.api.create_container(
        plan.image, name=f"{project}_{seal['name']}_1", entrypoint=seal["entrypoint"],
        labels={**seal["labels"], **_compose_labels(project, seal["name"])}, host_config=host)
    return str(created["Id"])


def _seal(c: Any, plan: Plan, seal: dict[str, Any], seal_id: str) -> None:
    """Wait for the started seal's end; RuntimeProblem if it did not work."""
    try:
        code = c.api.wait(seal_id, timeout=60).get("StatusCode")
        if code != 0 and not _a_node_stopped(c, plan):
            said = c.api.logs(seal_id).decode(errors="replace").strip()
            raise sealing_failed(seal, said or f"exit {code}")
    finally:
        c.api.remove_container(seal_id, force=True)


def _a_node_stopped(c: Any, plan: Plan) -> bool:
    """Whether a node of the instance stopped while it started (its setup failed): its ports
    left the bridges, so the seal could not count them. Then the lab fails, saying why, when
    portlab waits for its nodes to be ready; the seal is not what went wrong."""
    nodes = c.api.containers(all=True, filters=docker_api.scope_filter(
        **{docker_api.LABEL_INSTANCE: plan.instance}))
    return any(x.get("State") != "running" for x in nodes
               if not (x.get("Labels") or {}).get(docker_api.LABEL_SEAL)
               and not (x.get("Labels") or {}).get(docker_api.LABEL_GRADER))


def sealing_failed(seal: dict[str, Any], said: str) -> RuntimeProblem:
    return RuntimeProblem(f"could not seal the host off the lab's bridges "
                          f"({', '.join(seal['bridges'])}): {said}",
                          hint="the host's kernel needs tc's ingress qdisc and cls_bpf "
                               "(sch_ingress, cls_bpf); `portlab doctor` says more")


def wait_seal(plan: Plan) -> None:
    """Compose started the seal (service seal.host) once the nodes ran: wait for its end, and
    raise RuntimeProblem unless it sealed the host off."""
    seal = models.seal_model(plan)
    if seal is None:
        return
    c = docker_api.client()
    with docker_api.guard(f"sealing the host off the networks of instance '{plan.instance}'"):
        found = c.api.containers(all=True, filters=docker_api.scope_filter(
            **{docker_api.LABEL_INSTANCE: plan.instance, docker_api.LABEL_SEAL: "host"}))
        if not found:
            raise RuntimeProblem("Compose did not start the seal (service seal.host)")
        cid = found[0]["Id"]
        code = c.api.wait(cid, timeout=60).get("StatusCode")
        if code != 0 and not _a_node_stopped(c, plan):
            raise sealing_failed(seal, c.api.logs(cid).decode(errors="replace").strip()
                                 or f"exit {code}")


def _grader(c: Any, plan: Plan, node: str, project: str, node_id: str) -> str:
    model = models.grader_model(plan, node)
    host = c.api.create_host_config(
        cap_add=CAPS, network_mode=f"container:{node_id}", pid_mode=f"container:{node_id}",
        read_only=True, tmpfs={"/run": "", "/tmp": ""})
    created = c.api.create_container(
        plan.image, name=f"{project}_{model['name']}_1", entrypoint=["sleep", "infinity"],
        labels={**model["labels"], **_compose_labels(project, model["name"]),
                "portlab.version": __version__},
        host_config=host, stop_timeout=1)
    return str(created["Id"])

