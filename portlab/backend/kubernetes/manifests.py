"""Turn a plan into Kubernetes manifests: a Namespace, Multus networks, Pods, a NetworkPolicy.

The design is in docs/scaling.md ("Hosted labs: a Kubernetes backend"). One
instance is one namespace; each lab network a Multus
NetworkAttachmentDefinition (a Linux bridge of its own on the cluster node,
static addresses, no gateway, no masquerade); each node a pod that gets its
lab interfaces, by the lab's names, from the `k8s.v1.cni.cncf.io/networks`
annotation, with NET_ADMIN and NET_RAW and never `privileged`; a
NetworkPolicy shuts the pod network (eth0) in both directions. What each node
does at start is the plan's (portlab.model.plan.node_config), exactly as on
Docker: the same entrypoint reads the same $PORTLAB_NODE.

Plain dicts, dumped as multi-document YAML: no Kubernetes client library. Not
yet run on a cluster, only validated against the Kubernetes schemas
(tests/unit/test_kubernetes_render.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from portlab import __version__
from portlab.backend.labels import (
    LABEL_INSTANCE,
    LABEL_INTERFACES,
    LABEL_KEY_SEED,
    LABEL_LAB,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_NODE_IMAGE,
    LABEL_PARAMS,
    LABEL_SCOPE,
    LABEL_SECRET,
    LABEL_STUDENT,
    LABEL_SUBNET,
    LABEL_SUBNETS,
    LABEL_TOKEN,
    LABEL_VPN,
)
from portlab.errors import UsageError, printable
from portlab.model.plan import Limits, Plan, hosts, node_config, node_sysctls
from portlab.model.types import Node
from portlab.names import scope

LABEL_VERSION = "portlab.version"

NAD_API = "k8s.cni.cncf.io/v1"
NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"  # Multus: a pod's extra interfaces
# NET_ADMIN, NET_RAW and unsafe sysctls are beyond Pod Security's "baseline" level.
POD_SECURITY = "pod-security.kubernetes.io/enforce"
# The extended resource a device plugin offers /dev/net/tun under (squat's
# generic-device-plugin: `--device '{"name": "tun", "groups": [{"count": 1000, "paths":
# [{"path": "/dev/net/tun"}]}]}'`, a count so that many pods share the one device). A
# choice, not a standard: see docs/scaling.md.
TUN_RESOURCE = "squat.ai/tun"
READY_FILE = "/run/portlab/ready"  # nodeinit.py writes it just before it prints portlab-ready
NODE_CONTAINER = "node"
GRADER_CONTAINER = "grader"
POLICY_NAME = "portlab-sealed"
CNI_VERSION = "0.4.0"
# What the kubelet must allow (--allowed-unsafe-sysctls): none of them is on its safe list.
UNSAFE_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.src_valid_mark",
                  "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6")
DISK_LIMIT = "1Gi"  # ephemeral storage per container: the node's own writes, logs included

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # up to 63
REGISTRY = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?"
                      r"(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def _label(key: str, value: str) -> str:
    """A label value as Kubernetes takes it, or a UsageError that says why not."""
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        raise UsageError(f"{key}='{printable(value)}' cannot be a Kubernetes label value",
                         hint="on Kubernetes, names must end with a letter or digit")
    return value


def namespace_name(instance: str) -> str:
    """The instance's namespace: portlab-SCOPE-INSTANCE, shortened with a hash past 63."""
    name = f"portlab-{_label(LABEL_SCOPE, scope())}-{_label(LABEL_INSTANCE, instance)}"
    if len(name) > 63:
        name = f"{name[:54].rstrip('-')}-{_digest(scope(), instance, length=8)}"
    return name


def bridge_name(instance: str, network: str) -> str:
    """The Linux bridge of one lab network on the cluster node: 15 characters (the kernel's
    limit), one per scope, instance and network, so two instances never share a bridge."""
    return "pl" + _digest(scope(), instance, network, length=13)


def image_ref(plan: Plan, registry: str | None) -> str:
    """The node image as the cluster pulls it: REGISTRY/portlab/node:HASH, or the local tag."""
    if not registry:
        return plan.image
    registry = registry.rstrip("/")
    if not REGISTRY.fullmatch(registry):
        raise UsageError(f"'{printable(registry)}' is not a registry",
                         hint="give a host with an optional port and path, e.g. "
                              "registry.example.com:5000/course")
    return f"{registry}/{plan.image}"


def _common_labels(plan: Plan) -> dict[str, str]:
    labels = {
        LABEL_SCOPE: _label(LABEL_SCOPE, scope()),
        LABEL_LAB: plan.lab.name,
        LABEL_INSTANCE: _label(LABEL_INSTANCE, plan.instance),
    }
    if plan.student:
        labels[LABEL_STUDENT] = _label(LABEL_STUDENT, plan.student)
    return labels


def _metadata(plan: Plan, name: str, labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace_name(plan.instance),
                            "labels": {**_common_labels(plan), **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return meta


def namespace(plan: Plan) -> dict[str, Any]:
    # Labels select; what is data (JSON, a token) goes in annotations, which take any text.
    annotations = {
        LABEL_TOKEN: plan.token,
        LABEL_SECRET: plan.secret,
        LABEL_SUBNETS: _json({k: str(v) for k, v in plan.subnets.items()}),
        LABEL_PARAMS: _json(plan.lab.params),
        LABEL_VERSION: __version__,
    }
    if plan.binding.key_seed:
        annotations[LABEL_KEY_SEED] = plan.binding.key_seed
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace_name(plan.instance),
            "labels": {**_common_labels(plan), POD_SECURITY: "privileged"},
            "annotations": annotations,
        },
    }


def cni_config(plan: Plan, network: str) -> dict[str, Any]:
    """The bridge CNI config of one lab network: addresses come per pod (the `ips`
    capability, from the networks annotation), and the bridge has none of its own."""
    return {
        "cniVersion": CNI_VERSION,
        "name": f"{namespace_name(plan.instance)}.{network}",
        "type": "bridge",
        "bridge": bridge_name(plan.instance, network),
        "isGateway": False,  # no address on the bridge: the cluster node is not on the lab
        "isDefaultGateway": False,
        "ipMasq": False,  # no NAT but the learner's own
        "hairpinMode": False,
        "capabilities": {"ips": True},
        "ipam": {"type": "static"},  # no routes, no gateway: nothing leads out of the lab
    }


def network_attachment(plan: Plan, network: str) -> dict[str, Any]:
    subnet = str(plan.subnets[network])
    return {
        "apiVersion": NAD_API,
        "kind": "NetworkAttachmentDefinition",
        "metadata": _metadata(plan, network, {LABEL_NETWORK: network},
                              {LABEL_SUBNET: subnet, LABEL_TOKEN: plan.token}),
        "spec": {"config": _json(cni_config(plan, network))},
    }


def network_policy(plan: Plan) -> dict[str, Any]:
    """Nothing in or out on the pod network: every pod of the namespace, both directions,
    no rule that allows anything. Multus interfaces are not the policy's (see the docs)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(plan, POLICY_NAME),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _security(read_only: bool = False) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
    }
    if read_only:
        ctx["readOnlyRootFilesystem"] = True
    return ctx


def _host_aliases(plan: Plan, node: Node) -> list[dict[str, Any]]:
    """/etc/hosts as on Docker (extra_hosts): the kubelet writes these lines into it."""
    by_ip: dict[str, list[str]] = {}
    for name, ip in hosts(plan, node):
        by_ip.setdefault(ip, []).append(name)
    return [{"ip": ip, "hostnames": names} for ip, names in by_ip.items()]


def _resources(plan: Plan, vpn: bool) -> dict[str, Any]:
    limits = plan.limits or Limits()
    memory = f"{limits.memory_mib}Mi"
    res: dict[str, Any] = {
        "requests": {"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
        "limits": {"cpu": "1", "memory": memory, "ephemeral-storage": DISK_LIMIT},
    }
    if vpn:
        res["limits"][TUN_RESOURCE] = "1"  # an extended resource: its request is the limit
    return res


def _grader(image: str) -> dict[str, Any]:
    """The grader beside a node (see Plan.graders): a container of the node's pod, so it shares
    the node's network; shareProcessNamespace gives it the node's processes; its files are its
    own, read-only but for /run and /tmp."""
    return {
        "name": GRADER_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "infinity"],
        "securityContext": _security(read_only=True),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "500m", "memory": "128Mi",
                                 "ephemeral-storage": "64Mi"}},
        "volumeMounts": [{"name": "grader-run", "mountPath": "/run"},
                         {"name": "grader-tmp", "mountPath": "/tmp"}],
    }


def pod(plan: Plan, node: Node, image: str) -> dict[str, Any]:
    config = node_config(plan, node)
    ns = namespace_name(plan.instance)
    sysctls = node_sysctls(node)
    env = {"PORTLAB_NODE": _json(config)}
    labels = {LABEL_NODE: node.name}
    if node.vpn:
        # As on Docker: wg-quick uses the kernel module when it loads, else wireguard-go.
        env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = "wireguard-go"
        env["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1"
        labels[LABEL_VPN] = "true"
    networks = [{"name": i["network"], "namespace": ns, "interface": i["name"],
                 "ips": [f"{i['address']}/{i['prefix']}"]}
                for i in _interfaces(plan, node, config)]
    annotations = {
        NETWORKS_ANNOTATION: _json(networks),
        LABEL_TOKEN: plan.token,
        LABEL_INTERFACES: _json({i["name"]: f"{i['address']}/{i['prefix']}"
                                 for i in config["interfaces"]}),
        LABEL_SUBNETS: _json({k: str(v) for k, v in plan.subnets.items()}),
        LABEL_PARAMS: _json(plan.lab.params),
        LABEL_NODE_IMAGE: image,
        LABEL_VERSION: __version__,
    }
    if plan.binding.key_seed:
        annotations[LABEL_KEY_SEED] = plan.binding.key_seed
    container = {
        "name": NODE_CONTAINER,
        "image": image,
        # The tag is a hash of the image's content: a tag once pulled never changes.
        "imagePullPolicy": "IfNotPresent",
        # The kubelet expands $(NAME) in env values and takes $$ for $: every $ doubled, so a
        # node's scripts reach it as written (`$$` in a shell script, `$(date)`).
        "env": [{"name": k, "value": v.replace("$", "$$")} for k, v in env.items()],
        "securityContext": _security(),
        # portlab itself waits for the `portlab-ready` line in the log (portlab.runtime.ready);
        # this probe reads the file nodeinit writes at the same moment, for the pod's Ready.
        "readinessProbe": {"exec": {"command": ["test", "-f", READY_FILE]},
                           "periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1},
        "resources": _resources(plan, node.vpn),
    }
    containers = [container]
    volumes = []
    if node.name in plan.graders:
        containers.append(_grader(image))
        volumes = [{"name": "grader-run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                   {"name": "grader-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    spec: dict[str, Any] = {
        "hostname": node.name,
        "automountServiceAccountToken": False,  # a lab node has no business with the API
        "enableServiceLinks": False,  # no FOO_SERVICE_HOST variables of the cluster's services
        # The pause container becomes PID 1 and reaps, as docker-init does on Docker; the node's
        # own processes then stop on SIGTERM at once, and a grader sees them.
        "shareProcessNamespace": True,
        "terminationGracePeriodSeconds": 1,
        "restartPolicy": "Never",  # a node that failed stays failed, with its log
        # Labs have no DNS: names come from /etc/hosts (hostAliases); nothing answers here.
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["127.0.0.1"]},
        "hostAliases": _host_aliases(plan, node),
        "securityContext": {"sysctls": [{"name": k, "value": v} for k, v in sysctls.items()]},
        # Lab bridges exist on one cluster node only: every pod of the instance goes where
        # the first one went.
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {LABEL_INSTANCE: plan.instance}},
            "topologyKey": "kubernetes.io/hostname",
        }]}},
        "containers": containers,
    }
    if volumes:
        spec["volumes"] = volumes
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(plan, node.name, labels, annotations),
        "spec": spec,
    }


def _interfaces(plan: Plan, node: Node, config: dict[str, Any]) -> list[dict[str, Any]]:
    by_name = {i.name: i.network for i in node.interfaces}
    return [{**i, "network": by_name[i["name"]]} for i in config["interfaces"]]


def manifests(plan: Plan, registry: str | None = None) -> list[dict[str, Any]]:
    """Every object of the instance, in the order `kubectl apply` should create them."""
    ipv6 = [n.name for n in plan.lab.networks if n.ipv6]
    if ipv6:
        # The bridge CNI plugin gives each bridge a link-local IPv6 address of the cluster
        # node's, and nothing here can take it away: a node of the lab could reach the
        # cluster node over IPv6. Docker's backend seals its bridges (models.SEAL_SCRIPT).
        raise UsageError(
            f"lab '{plan.lab.name}' has IPv6 networks ({', '.join(ipv6)}), which the "
            "Kubernetes render does not support: it cannot keep the cluster node off their "
            "bridges over IPv6", hint=f"run it on Docker: `portlab up {plan.lab.name}`")
    image = image_ref(plan, registry)
    docs = [namespace(plan)]
    docs += [network_attachment(plan, n.name) for n in plan.lab.networks if not n.virtual]
    docs.append(network_policy(plan))
    docs += [pod(plan, n, image) for n in plan.lab.nodes]
    return docs


def _header(plan: Plan, registry: str | None) -> list[str]:
    image = image_ref(plan, registry)
    lines = [
        f'Rendered by portlab {__version__}: lab "{plan.lab.name}", instance "{plan.instance}", '
        "for Kubernetes.",
        "Not yet run live on any cluster: only validated offline against the Kubernetes",
        "schemas (docs/scaling.md). What the cluster needs:",
        "  * Multus, and the bridge and static CNI plugins on every node;",
        "  * kubelets that allow these unsafe sysctls (--allowed-unsafe-sysctls):",
        "    " + ",".join(UNSAFE_SYSCTLS) + ";",
    ]
    if any(n.vpn for n in plan.lab.nodes):
        lines.append(f"  * for the VPN nodes, a device plugin offering {TUN_RESOURCE} "
                     "(/dev/net/tun);")
    if registry:
        lines.append(f"  * the node image {image}, pushed there.")
    else:
        lines += [f"  * the node image: {image} is a local tag; push it to a registry the",
                  "    cluster pulls from and render with --registry REGISTRY."]
    lines += ["Start: kubectl apply -f THIS_FILE; remove: kubectl delete namespace "
              + namespace_name(plan.instance)]
    return [f"# {line}".rstrip() for line in lines]


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=10**6)


def render(plan: Plan, registry: str | None = None) -> str:
    """The instance's manifests as one multi-document YAML file."""
    docs = manifests(plan, registry)
    return "\n".join(_header(plan, registry)) + "\n" + "".join(
        f"---\n{_dump(d)}" for d in docs)


def documents(text: str) -> Sequence[dict[str, Any]]:
    """The manifests of a rendered file, read back."""
    return [d for d in yaml.safe_load_all(text) if d]
