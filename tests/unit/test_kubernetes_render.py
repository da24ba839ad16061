"""`portlab render --format kubernetes`: every manifest of every shipped lab validates offline.

Core kinds (Namespace, Pod, NetworkPolicy) are checked against the Kubernetes
schemas kubernetes-validate ships (strict: unknown fields are errors). A
NetworkAttachmentDefinition is Multus's CRD, which it cannot know: its schema,
the networks annotation's and the bridge CNI config's are ours, written from
the specs, in tests/schemas-k8s. No cluster is involved anywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from portlab.backend.docker import client as docker_labels
from portlab.backend.docker import models as compose_render
from portlab.backend.kubernetes import manifests as k8s
from portlab.errors import UsageError
from portlab.model.catalog import find
from portlab.model.context import Binding
from portlab.model.plan import Limits, Plan

K8S_VERSION = "1.29"
ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "schemas-k8s"
ALL_LABS = sorted(p.parent.name for p in (ROOT / "labs").glob("*/lab.yaml"))
# Labs with IPv6 networks are refused (test_a_lab_with_ipv6_networks_is_refused_with_a_reason).
IPV6_LABS = [name for name in ALL_LABS if any(n.ipv6 for n in find(name).networks)]
LABS = [name for name in ALL_LABS if name not in IPV6_LABS]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
IMAGE = "portlab/node:0123456789ab"
NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


NAD_SCHEMA = schema("network-attachment-definition")
SELECTION_SCHEMA = schema("network-selection")
BRIDGE_SCHEMA = schema("cni-bridge")


def validate(doc: dict[str, Any]) -> None:
    """Raise if the manifest is not valid for Kubernetes K8S_VERSION (or, for a NAD, Multus)."""
    if doc["kind"] == "NetworkAttachmentDefinition":
        jsonschema.validate(doc, NAD_SCHEMA, cls=jsonschema.Draft202012Validator)
        jsonschema.validate(json.loads(doc["spec"]["config"]), BRIDGE_SCHEMA,
                            cls=jsonschema.Draft202012Validator)
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    if doc["kind"] == "Pod":
        networks = json.loads(doc["metadata"]["annotations"][k8s.NETWORKS_ANNOTATION])
        jsonschema.validate(networks, SELECTION_SCHEMA, cls=jsonschema.Draft202012Validator)


def plan_of(lab_name: str, instance: str | None = None, **kw: Any) -> Plan:
    lab = find(lab_name)
    return Plan(Binding(lab, instance or lab.name, lab.preferred_subnets(), "tok123"), IMAGE,
                **kw)


def docs_of(plan: Plan, registry: str | None = None) -> list[dict[str, Any]]:
    """The manifests as the rendered text gives them (the YAML round trip included)."""
    return list(k8s.documents(k8s.render(plan, registry)))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in by_kind(docs, "Pod")}


def node_container(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == k8s.NODE_CONTAINER)


def test_every_shipped_lab_is_tested() -> None:
    assert {"forwarding", "firewall", "vpn"} <= set(LABS)
    assert IPV6_LABS == ["ipv6"]


@pytest.mark.parametrize("lab_name", IPV6_LABS)
def test_a_lab_with_ipv6_networks_is_refused_with_a_reason(lab_name: str) -> None:
    with pytest.raises(UsageError, match="IPv6 networks .* Kubernetes render does not support"
                       ) as caught:
        k8s.render(plan_of(lab_name))
    assert caught.value.hint == f"run it on Docker: `portlab up {lab_name}`"


@pytest.mark.parametrize("lab_name", LABS)
def test_every_document_validates(lab_name: str) -> None:
    docs = docs_of(plan_of(lab_name))
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "Namespace"  # first, so that `kubectl apply` can create the rest in it
    assert kinds.count("Namespace") == 1 and kinds.count("NetworkPolicy") == 1
    lab = find(lab_name)
    assert kinds.count("NetworkAttachmentDefinition") == len(
        [n for n in lab.networks if not n.virtual])
    assert kinds.count("Pod") == len(lab.nodes)
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("lab_name", LABS)
def test_a_grade_instance_validates_too(lab_name: str) -> None:
    """A grade's shape: limits, a student's labels, and graders beside every node."""
    lab = find(lab_name)
    graders = tuple(n.name for n in lab.nodes)
    docs = docs_of(plan_of(lab_name, "grade-1", limits=Limits(pids=128, memory_mib=200),
                           student="s-123", graders=graders), registry="registry.test:5000")
    for doc in docs:
        validate(doc)
        assert doc["metadata"]["labels"]["portlab.student"] == "s-123"
    for pod in pods(docs).values():
        assert [c["name"] for c in pod["spec"]["containers"]] == ["node", "grader"]
        assert pod["spec"]["shareProcessNamespace"] is True  # the grader sees the node's
        grader = pod["spec"]["containers"][1]
        assert grader["securityContext"]["readOnlyRootFilesystem"] is True
        assert node_container(pod)["resources"]["limits"]["memory"] == "200Mi"
        assert node_container(pod)["image"] == f"registry.test:5000/{IMAGE}"


@pytest.mark.parametrize("lab_name", LABS)
def test_names_are_dns_1123(lab_name: str) -> None:
    for doc in docs_of(plan_of(lab_name)):
        meta = doc["metadata"]
        assert len(meta["name"]) <= 253 and DNS_SUBDOMAIN.fullmatch(meta["name"])
        if doc["kind"] in ("Namespace", "Pod"):  # namespaces and hostnames: labels
            assert len(meta["name"]) <= 63 and DNS_LABEL.fullmatch(meta["name"])
        if doc["kind"] == "Pod":
            assert DNS_LABEL.fullmatch(doc["spec"]["hostname"])
            for container in doc["spec"]["containers"]:
                assert DNS_LABEL.fullmatch(container["name"])
        if "namespace" in meta:
            assert DNS_LABEL.fullmatch(meta["namespace"]) and len(meta["namespace"]) <= 63


def test_long_scope_and_instance_make_a_short_unique_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTLAB_SCOPE", "s" * 20)
    names = {k8s.namespace_name("i" * 39 + x) for x in "ab"}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 63 and DNS_LABEL.fullmatch(name)
    docs = docs_of(plan_of("forwarding", "i" * 40))
    for doc in docs:
        validate(doc)


def test_a_name_kubernetes_cannot_label_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="cannot be a Kubernetes label value"):
        k8s.render(plan_of("forwarding", "ends-with-dash-"))


@pytest.mark.parametrize("lab_name", LABS)
def test_interfaces_and_addresses_match_the_compose_render(lab_name: str) -> None:
    plan = plan_of(lab_name)
    compose = yaml.safe_load(compose_render.compose(plan))
    kube = pods(docs_of(plan))
    nodes = {k: v for k, v in compose["services"].items() if k != compose_render.SEAL_NAME}
    assert set(kube) == set(nodes)
    for name, svc in nodes.items():
        pod = kube[name]
        annotations = pod["metadata"]["annotations"]
        assert annotations["portlab.interfaces"] == svc["labels"]["portlab.interfaces"]
        networks = json.loads(annotations[k8s.NETWORKS_ANNOTATION])
        interfaces = json.loads(svc["labels"]["portlab.interfaces"])
        assert {n["interface"]: n["ips"][0] for n in networks} == interfaces
        assert {n["name"]: str(IPv4Interface(n["ips"][0]).ip) for n in networks} == {
            net: cfg["ipv4_address"] for net, cfg in svc["networks"].items()}
        assert {n["namespace"] for n in networks} == {pod["metadata"]["namespace"]}
        # What the node does at start is the same: environment, sysctls, names it resolves.
        container = node_container(pod)
        assert {e["name"]: e["value"] for e in container["env"]} == svc["environment"]
        assert {s["name"]: s["value"] for s in pod["spec"]["securityContext"]["sysctls"]} == \
            svc["sysctls"]
        aliases = [f"{h}:{a['ip']}" for a in pod["spec"]["hostAliases"] for h in a["hostnames"]]
        assert sorted(aliases) == sorted(svc["extra_hosts"])
        assert pod["spec"]["hostname"] == svc["hostname"]


@pytest.mark.parametrize("lab_name", LABS)
def test_networks_are_bridges_without_gateway_or_masquerade(lab_name: str) -> None:
    plan = plan_of(lab_name)
    docs = docs_of(plan)
    bridges = set()
    for nad in by_kind(docs, "NetworkAttachmentDefinition"):
        config = json.loads(nad["spec"]["config"])
        assert config["type"] == "bridge"
        assert config["isGateway"] is False and config["isDefaultGateway"] is False
        assert config["ipMasq"] is False
        assert config["ipam"] == {"type": "static"}  # no routes, no gateway
        assert config["capabilities"] == {"ips": True}  # addresses come from each pod
        assert len(config["bridge"]) <= 15
        bridges.add(config["bridge"])
        name = nad["metadata"]["name"]
        assert nad["metadata"]["annotations"]["portlab.subnet"] == str(plan.subnets[name])
        assert nad["metadata"]["labels"]["portlab.network"] == name
    assert len(bridges) == len(by_kind(docs, "NetworkAttachmentDefinition"))
    # Every address a pod asks for lies in its network's subnet.
    for pod in pods(docs).values():
        for net in json.loads(pod["metadata"]["annotations"][k8s.NETWORKS_ANNOTATION]):
            assert IPv4Interface(net["ips"][0]).network == plan.subnets[net["name"]]


def test_bridges_are_per_instance() -> None:
    one = json.loads(by_kind(docs_of(plan_of("forwarding", "a")),
                             "NetworkAttachmentDefinition")[0]["spec"]["config"])
    two = json.loads(by_kind(docs_of(plan_of("forwarding", "b")),
                             "NetworkAttachmentDefinition")[0]["spec"]["config"])
    assert one["bridge"] != two["bridge"]


@pytest.mark.parametrize("lab_name", LABS)
def test_no_pod_is_privileged(lab_name: str) -> None:
    for pod in pods(docs_of(plan_of(lab_name))).values():
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert "hostNetwork" not in spec and "hostPID" not in spec
        assert "volumes" not in spec  # no hostPath, nothing of the cluster node
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["privileged"] is False
            assert ctx["allowPrivilegeEscalation"] is False
            assert sorted(ctx["capabilities"]["add"]) == ["NET_ADMIN", "NET_RAW"]
            assert "memory" in container["resources"]["limits"]
            assert "ephemeral-storage" in container["resources"]["limits"]


@pytest.mark.parametrize("lab_name", LABS)
def test_wireguard_nodes_and_only_they_request_the_tun_device(lab_name: str) -> None:
    lab = find(lab_name)
    kube = pods(docs_of(plan_of(lab_name)))
    for node in lab.nodes:
        limits = node_container(kube[node.name])["resources"]["limits"]
        assert (limits.get(k8s.TUN_RESOURCE) == "1") is node.vpn
        assert (kube[node.name]["metadata"]["labels"].get("portlab.vpn") == "true") is node.vpn
    if lab_name == "vpn":
        assert any(n.vpn for n in lab.nodes)


@pytest.mark.parametrize("lab_name", LABS)
def test_network_policy_seals_the_pod_network(lab_name: str) -> None:
    docs = docs_of(plan_of(lab_name))
    (policy,) = by_kind(docs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"] == {}  # every pod of the namespace
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in spec and "egress" not in spec  # no rule: nothing allowed
    assert policy["metadata"]["namespace"] == docs[0]["metadata"]["name"]


def test_labels_are_the_docker_backends_keys() -> None:
    for name in dir(docker_labels):
        if name.startswith("LABEL_") and hasattr(k8s, name):
            assert getattr(k8s, name) == getattr(docker_labels, name), name
    docs = docs_of(plan_of("forwarding"))
    ns = docs[0]["metadata"]
    assert ns["labels"]["portlab.scope"] == os.environ["PORTLAB_SCOPE"]
    assert ns["labels"]["portlab.instance"] == "forwarding"
    assert ns["labels"]["portlab.lab"] == "forwarding"
    assert ns["annotations"]["portlab.token"] == "tok123"
    for doc in docs:  # label values as Kubernetes takes them; JSON goes in annotations
        for value in doc["metadata"]["labels"].values():
            assert len(value) <= 63 and k8s.LABEL_VALUE.fullmatch(value)


def kubelet_expand(value: str, env: dict[str, str]) -> str:
    """What the kubelet makes of an env value: $(NAME) of a variable defined before it is its
    value, $$ is $, anything else stays (k8s.io/kubernetes third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    out.append(env.get(name, value[i:end + 1]))
                    i = end + 1
                    continue
        out.append(value[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize("lab_name", LABS)
def test_node_config_reaches_the_node_unchanged(lab_name: str) -> None:
    from portlab.model.plan import node_config

    plan = plan_of(lab_name)
    lab = plan.lab
    for node in lab.nodes:
        env: dict[str, str] = {}
        for var in node_container(pods(docs_of(plan))[node.name])["env"]:
            env[var["name"]] = kubelet_expand(var["value"], env)
        assert json.loads(env["PORTLAB_NODE"]) == node_config(plan, node)


def test_dollars_survive_the_kubelet() -> None:
    text = "echo $$ $(date) $(PORTLAB_NODE) $$$ ${X} $"
    assert kubelet_expand(text.replace("$", "$$"), {"PORTLAB_NODE": "leak"}) == text


def test_readiness_probe_reads_the_file_nodeinit_writes() -> None:
    text = (ROOT / "portlab" / "node" / "nodeinit.py").read_text()
    assert 'RUN_DIR = "/run/portlab"' in text
    assert 'os.path.join(RUN_DIR, "ready")' in text
    assert k8s.READY_FILE == "/run/portlab/ready"
    for pod in pods(docs_of(plan_of("forwarding"))).values():
        probe = node_container(pod)["readinessProbe"]
        assert probe["exec"]["command"] == ["test", "-f", k8s.READY_FILE]


def test_the_package_needs_nothing_of_docker() -> None:
    code = ("import sys, portlab.backend.kubernetes.manifests; "
            "bad = [m for m in sys.modules if m.startswith(('portlab.backend.docker', 'docker'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_registry_is_checked() -> None:
    assert k8s.image_ref(plan_of("forwarding"), "ghcr.io/course/") == f"ghcr.io/course/{IMAGE}"
    with pytest.raises(UsageError, match="not a registry"):
        k8s.image_ref(plan_of("forwarding"), "https://registry")


# --- negative controls: the checks above can fail ---

def valid_pod() -> dict[str, Any]:
    return next(d for d in docs_of(plan_of("forwarding")) if d["kind"] == "Pod")


@pytest.mark.parametrize("breakage", [
    lambda p: p["spec"].update(terminationGracePeriodSeconds="soon"),
    lambda p: p["spec"]["securityContext"]["sysctls"].append({"name": "net.ipv4.ip_forward",
                                                              "value": 1}),
    lambda p: node_container(p)["securityContext"].update(privileged="no"),
    lambda p: p["spec"].update(restartPolicyy="Never"),  # an unknown field (strict)
    lambda p: p["spec"].pop("containers"),
    lambda p: node_container(p)["env"].append({"value": "no name"}),
])
def test_a_broken_pod_fails_validation(breakage: Any) -> None:
    pod = valid_pod()
    validate(pod)
    breakage(pod)
    with pytest.raises(jsonschema.ValidationError):
        validate(pod)


@pytest.mark.parametrize("breakage", [
    lambda n: n["spec"].pop("config"),
    lambda n: n["metadata"].update(name="Not_DNS"),
    lambda n: n["spec"].update(config=json.dumps({**json.loads(n["spec"]["config"]),
                                                  "bridge": "a-name-far-too-long"})),
    lambda n: n["spec"].update(config=json.dumps({**json.loads(n["spec"]["config"]),
                                                  "type": "macvlan"})),
])
def test_a_broken_network_attachment_fails_validation(breakage: Any) -> None:
    nad = by_kind(docs_of(plan_of("forwarding")), "NetworkAttachmentDefinition")[0]
    validate(nad)
    breakage(nad)
    with pytest.raises(jsonschema.ValidationError):
        validate(nad)


def test_a_broken_networks_annotation_fails_validation() -> None:
    pod = valid_pod()
    pod["metadata"]["annotations"][k8s.NETWORKS_ANNOTATION] = json.dumps(
        [{"interface": "wan", "ips": ["10.0.0.1"]}])
    with pytest.raises(jsonschema.ValidationError):
        validate(pod)


# --- the command ---

def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **NO_DOCKER, **(env or {})})


def test_cli_renders_kubernetes_without_docker() -> None:
    proc = run("render", "forwarding", "--format", "kubernetes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Rendered by portlab")
    assert "Not yet run live" in proc.stdout
    docs = list(k8s.documents(proc.stdout))
    for doc in docs:
        validate(doc)
    assert {d["kind"] for d in docs} == {"Namespace", "NetworkAttachmentDefinition",
                                         "NetworkPolicy", "Pod"}
    assert node_container(pods(docs)["router"])["image"].startswith("portlab/node:")


def test_cli_registry_qualifies_the_image() -> None:
    proc = run("render", "forwarding", "--format", "kubernetes", "--registry",
               "registry.test:5000")
    assert proc.returncode == 0, proc.stderr
    image = node_container(pods(list(k8s.documents(proc.stdout)))["router"])["image"]
    assert image.startswith("registry.test:5000/portlab/node:")
    env = {"PORTLAB_K8S_REGISTRY": "ghcr.io/course"}
    proc = run("render", "forwarding", "--format", "kubernetes", env=env)
    assert "image: ghcr.io/course/portlab/node:" in proc.stdout
    # The compose file ignores the variable, and refuses the option.
    assert run("render", "forwarding", env=env).returncode == 0
    proc = run("render", "forwarding", "--registry", "registry.test")
    assert proc.returncode == 2 and "--format kubernetes" in proc.stderr


def test_cli_default_format_is_still_compose() -> None:
    proc = run("render", "forwarding")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["version"] == "2.4"
    assert "kubernetes" in run("render", "--help").stdout
