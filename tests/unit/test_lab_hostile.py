"""Hostile lab files: each is a valid lab or one clear LabError, never a traceback.

Property-based (hypothesis). The strategies start from a valid lab (the
minimal one of labfiles.py, or a richer one using every part of the format),
break it in one to three places (unknown keys, wrong types, hostile names,
duplicate or out-of-range addresses, overlapping or unusable subnets,
template injection) or replace it with arbitrary text or YAML (tags,
anchors, aliases, merge keys). For every case:

* the loader returns a Lab, or raises LabError whose one-line message starts
  with the file and names the key (or, for whole-file problems, the line);
  any other exception is a failure, since a user would see it as a traceback;
* a lab that is accepted also renders, and the compose file has exactly the
  lab's services and networks with the fixed privileges, whatever text the
  lab put into roles, scripts or templates;
* `portlab render` and `portlab show` turn hostile labs into exit code 2 and
  that message, and core.up fails the same way before it touches Docker.

A failure prints the falsifying example and the `@reproduce_failure` blob;
`--hypothesis-seed=N` replays a whole run.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from portlab import core
from portlab.backend.docker import models
from portlab.cli import cli
from portlab.errors import LabError, PortlabError, printable
from portlab.model import allocate, templating, yamlsrc
from portlab.model.context import Binding
from portlab.model.loader import parse
from portlab.model.plan import Plan
from portlab.model.types import Lab
from portlab.model.yamlsrc import dotted
from portlab.names import check_instance_name
from portlab.views import brief
from tests.unit.labfiles import minimal

FILE = "labs/mini/lab.yaml"
DIRECTORY = Path("labs/mini")
INSTANCE = "fuzz"
TOKEN = "0123456789abcdef"
IMAGE = "portlab/node:test"

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(FUZZ, max_examples=100)

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump(data: Any, *, unicode: bool = False) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=unicode)


def say(text: str, outcome: str | None = None) -> None:
    """hypothesis.note (and event, for --hypothesis-show-statistics), also outside @given."""
    try:
        note(text)
        if outcome:
            event(outcome)
    except InvalidArgument:
        pass


# ------------------------------------------------------------------------------------------------
# The property: a Lab that renders safely, or one clear LabError.


def judge(text: str, data: Any = None) -> Lab | LabError:
    """Parse `text`; check the error is clear, or that the accepted lab renders safely."""
    try:
        lab = parse(text, FILE, directory=DIRECTORY)
    except LabError as err:
        say(f"rejected: {err}", "rejected")
        assert_clear(err, text, data)
        return err
    say("accepted", "accepted")
    assert_sane(lab)
    assert_renders_safely(lab)
    return lab


def line_count(text: str) -> int:
    # YAML counts \r\n, \r, \n, NEL and the Unicode line and paragraph separators as breaks.
    return len(re.split(r"\r\n|[\r\n\x85\u2028\u2029]", text))


def assert_clear(err: LabError, text: str | None = None, data: Any = None,
                 file: str = FILE) -> None:
    message = str(err)
    assert err.file == file
    where = f"{file}:{err.line}" if err.line else file
    head = f"{where}: {printable(err.key)}: " if err.key else f"{where}: "
    assert message.startswith(head), message
    assert message[len(head):].strip(), "the message says what is wrong"
    assert message.isprintable(), f"one line, no control or bidi characters: {message!r}"
    assert "Traceback" not in message
    if err.line is not None:
        assert err.line >= 1
        if text is not None:
            assert err.line <= line_count(text) + 1, (err.line, message)
    if not err.key:  # a whole-file problem: it has a line, or the file is empty
        assert err.line is not None or err.detail.endswith("got nothing"), message
    elif isinstance(data, dict):  # the key path starts at a key the file really has
        tops = [dotted((str(k),)) for k in data]
        assert any(err.key == k or err.key.startswith((f"{k}.", f"{k}[")) for k in tops), (
            err.key, tops)


HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LINUX_IFNAME = re.compile(r"[!-~]{1,15}")  # printable ASCII, no space
RESERVED_IFNAME = re.compile(r"lo|eth\d+|wg\d+|tun\d+|tap\d+|veth.*|docker.*|br.*")
# Never usable for a lab network: "this network", loopback, link-local, multicast, reserved.
UNUSABLE = [IPv4Network(n) for n in
            ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")]


def assert_sane(lab: Lab) -> None:
    """What every accepted lab must be, independently of how the loader checks it."""
    for node in lab.nodes:
        assert HOSTNAME.fullmatch(node.name) and not node.name.isdigit(), node.name
        for iface in node.interfaces:
            assert LINUX_IFNAME.fullmatch(iface.name) and "/" not in iface.name, iface.name
            assert ":" not in iface.name and not RESERVED_IFNAME.fullmatch(iface.name)
    for net in lab.networks:
        assert HOSTNAME.fullmatch(net.name), net.name
    subnets = lab.preferred_subnets()
    assert set(subnets) == {n.name for n in lab.networks}
    nets = list(subnets.items())
    for i, (name, subnet) in enumerate(nets):
        net = lab.network(name)
        assert net is not None and subnet.prefixlen == net.prefix
        for bad in allocate.DOCKER_DEFAULT_POOLS + UNUSABLE:
            assert not subnet.overlaps(bad), (name, subnet, bad)
        for other_name, other in nets[i + 1:]:
            assert not subnet.overlaps(other), (name, subnet, other_name, other)
    seen: set[str] = set()
    for key, ip in Binding(lab, INSTANCE, subnets, TOKEN).addresses.items():
        node_name, _, iface_name = key.partition(".")
        node = lab.node(node_name)
        iface = node.interface(iface_name) if node else None
        assert iface is not None
        subnet = subnets[iface.network]
        address = ipaddress.IPv4Address(ip)
        assert address in subnet
        assert address not in (subnet.network_address, subnet.broadcast_address,
                               subnet.broadcast_address - 1), (key, ip)  # the last is Docker's
        assert ip not in seen, f"{ip} used twice"
        seen.add(ip)


SERVICE_KEYS = {"image", "hostname", "init", "stop_grace_period", "cap_add", "sysctls",
                "environment", "labels", "networks", "extra_hosts",
                "logging"}  # since the sealed-host issue: every node's log is capped
LABEL_KEYS = {"portlab.scope", "portlab.lab", "portlab.instance", "portlab.node", "portlab.token",
              "portlab.interfaces", "portlab.subnets", "portlab.version",
              # since the shape issue: the params it runs with, and its image as named at start
              "portlab.params", "portlab.node-image",
              # since the verdicts issue: what its nodes' answer keys come from
              "portlab.secret"}
WG_ENV = {"WG_QUICK_USERSPACE_IMPLEMENTATION", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_renders_safely(lab: Lab) -> None:
    subnets = lab.preferred_subnets()
    plan = Plan(Binding(lab, INSTANCE, subnets, TOKEN), IMAGE)
    try:
        text = models.compose(plan)
    except LabError as err:  # a template may fail for this instance only; then say where
        say(f"render: {err}")
        assert_clear(err)
        return
    except PortlabError:
        return
    compose = yaml.load(text, Loader=_Loader)
    assert set(compose) == {"version", "services", "networks"}
    assert list(compose["services"]) == [n.name for n in lab.nodes] + ["seal.host"]
    assert list(compose["networks"]) == [n.name for n in lab.networks if not n.virtual]
    for s in strings(compose):  # Compose must not substitute host variables into a lab
        assert "$" not in s.replace("$$", ""), s
    ctx = plan.binding.context
    addr = plan.binding.addresses
    for node in lab.nodes:
        svc = compose["services"][node.name]
        assert set(svc) == SERVICE_KEYS | ({"devices"} if node.vpn else set()), set(svc)
        assert "privileged" not in svc
        assert svc["cap_add"] == ["NET_ADMIN", "NET_RAW"]
        assert svc["image"] == IMAGE and svc["hostname"] == node.name and svc["init"] is True
        assert svc.get("devices", []) == (["/dev/net/tun:/dev/net/tun"] if node.vpn else [])
        assert set(svc["environment"]) == {"PORTLAB_NODE"} | (WG_ENV if node.vpn else set())
        assert set(svc["labels"]) == LABEL_KEYS | ({"portlab.vpn"} if node.vpn else set())
        assert svc["labels"]["portlab.node"] == node.name
        assert svc["labels"]["portlab.lab"] == lab.name
        assert svc["labels"]["portlab.token"] == TOKEN
        assert svc["networks"] == {i.network: {"ipv4_address": addr[f"{node.name}.{i.name}"]}
                                   for i in node.interfaces}
        for entry in svc["extra_hosts"]:  # /etc/hosts lines: a node or node.iface, an address
            name, _, ip = entry.rpartition(":")
            assert (name in addr or lab.node(name)) and ipaddress.IPv4Address(ip), entry
        sysctls = {"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6",
                   "net.ipv4.ip_unprivileged_port_start"}
        sysctls |= {"net.ipv4.ip_forward"} if node.forwarding else set()
        sysctls |= {"net.ipv4.conf.all.src_valid_mark"} if node.vpn else set()
        assert set(svc["sysctls"]) == sysctls
        # Everything the lab wrote arrives unchanged, as data, in the node's JSON.
        config = json.loads(svc["environment"]["PORTLAB_NODE"].replace("$$", "$"))
        assert config["node"] == node.name
        assert config["setup"] == templating.render(node.setup, ctx)
        assert config["files"] == {p: templating.render(t, ctx) for p, t in node.files.items()}
        assert [s["run"] for s in config["services"]] == [templating.render(s.run, ctx)
                                                         for s in node.services]
        if node.role:  # a template like the story (since the verdicts issue)
            assert f"\n  {templating.render(node.role, ctx).strip()}\n" in config["motd"]
    for net in lab.networks:
        if net.virtual:
            continue
        spec = compose["networks"][net.name]
        assert set(spec) == {"driver", "driver_opts", "ipam", "labels"}
        assert spec["ipam"]["config"] == [{"subnet": str(subnets[net.name]),
                                           "gateway": str(subnets[net.name][-2])}]
        opts = dict(spec["driver_opts"])
        bridge = opts.pop("com.docker.network.bridge.name")
        assert opts == {"com.docker.network.bridge.enable_ip_masquerade": "false",
                        "com.docker.network.bridge.inhibit_ipv4": "true"}
        assert re.fullmatch(r"pl-[0-9a-f]{12}", bridge), bridge  # the seal finds it by name
    try:  # the brief (`portlab show`) before any instance exists: token is a placeholder
        brief.show(Binding.preview(lab), color=False)
    except LabError as err:
        assert_clear(err)


# ------------------------------------------------------------------------------------------------
# Labs to break: the minimal one, and one that uses every part of the format.


def rich() -> dict[str, Any]:
    data = minimal()
    data.update({
        "difficulty": "advanced",
        "concepts": ["ports", "NAT"],
        "story": "a serves the web on {{ addr['a.wan'] }}, port {{ params.port }}.",
        "access": "`portlab shell b`, then `curl {{ addr['a.wan'] }}`",
        "params": {"port": 80, "word": "hello", "ratio": 1.5, "on": True},
    })
    data["networks"]["lan"] = {"kind": "private", "prefer": "10.0.0.0/24", "label": "the LAN"}
    data["networks"]["tunnel"] = {"kind": "private", "prefix": 28, "virtual": True}
    a = data["nodes"]["a"]
    a.update({"role": "The web server.", "forwarding": True, "vpn": True,
              "setup": "ip addr add {{ ip('tunnel', 1) }}/{{ prefix['tunnel'] }} dev lo\n",
              "files": {"/etc/motd.d/a": "hello from {{ lab }}\n",
                        "/usr/local/bin/hi": "#!/bin/sh\necho '{{ params.word }}'\n"}})
    a["interfaces"]["lan"] = {"network": "lan", "host": 1}
    a["services"].append({"name": "echo", "run": "portlab-serve udp --port 9 --token {{ token }}",
                          "ready": {"udp": 9}})
    data["nodes"]["c"] = {"role": "A PC on the LAN.",
                          "interfaces": {"lan": {"network": "lan", "host": 10}},
                          "routes": [{"to": "default", "via": "a.lan"},
                                     {"to": "203.0.113.0/24", "via": "a.lan"}]}
    data["tasks"] = [{"id": "reach", "title": "Reach {{ addr['a.wan'] }}",
                      "text": "Use `curl` on port {{ params.port }}."},
                     {"id": "extra", "title": "More", "text": "Optional.", "stretch": True}]
    check = data["checks"][0]
    check.update({"task": "reach", "hint": "Is a up? {{ subnet['net'] }}"})
    check["probes"][0].update({"path": "/", "timeout": 2.5})
    check["probes"][0]["expect"]["seen_source"] = "b.wan"
    data["checks"].append({"id": "lan", "title": "c reaches a on the LAN", "probes": [
        {"kind": "tcp", "from": "c", "to": "a.lan", "port": 80, "expect": {"state": "open"}}]})
    data["solution"] = {"a": "iptables -A INPUT -p tcp --dport {{ params.port }} -j ACCEPT",
                        "c": "true"}
    data["wrong_solutions"] = [{"name": "nothing", "description": "Does nothing.",
                                "apply": {"c": "true"}, "fails": ["lan"]}]
    data["untouched"] = {"fails": ["lan"]}
    return data


BASES: list[Callable[[], dict[str, Any]]] = [minimal, rich]


def test_the_labs_to_break_are_valid_and_render() -> None:
    for base in BASES:
        data = base()
        assert isinstance(judge(dump(data), data), Lab)


# ------------------------------------------------------------------------------------------------
# Hostile values.

WEIRD_TEXT = [
    "", " ", "\t", "\n", "a\nb", "\r", "\x00", "nul\x00byte", "\x1b[2J\x1b[31mred", "\x7f",
    "\u2028", "line\u2028sep", "para\u2029sep", "\x85", "\u200f", "\u202erevers", "\u200b",
    "\ufeff", "🎮", "ünïcödé", "日本語", "\U0010fffd", "x" * 5000, "y" * 100_000,
    "\nprivileged: true", "a\n  privileged: true\n", '"\nprivileged: true\n"', "'", '"',
    "${HOME}", "$(id)", "`id`", "$$", "\\", "\\n", "- a", "? x", "*alias", "&anchor x",
    "!!python/object/apply:os.system ['id']", "{{ token }}", "{%", "#", "--- ", "...",
    "null", "~", "true", "yes", "0x1F", "1e3", ".nan", "2020-01-01", "12:30",
]
WEIRD = st.sampled_from(WEIRD_TEXT)
TEXT = st.one_of(WEIRD, st.text(max_size=40))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-5, 300),
                    st.floats(), TEXT)
KEYS = st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.floats())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)
PLAIN_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)

BAD_NAMES = [
    "", " ", "A", "Router", "my_router", "my router", "1router", "9", "-a", "a-", "a--b",
    "a" * 16, "a" * 23, "a" * 33, "a" * 63, "a" * 64, "a" * 300, "a.b", "a/b", "a:b", "a@b",
    "a\n", "\na", "a\r", "a\x00", "a\t", "a\u2028", "a\u200f", "\u0430", "routér", "🎮",
    "eth0", "eth1", "lo", "wg0", "tun0", "tap0", "veth1", "docker0", "br-lan", "null", "true",
    "1", "0x10", "~", "-", "a.", "localhost", "default", "x" * 15, "y" * 14,
]
# Valid-looking names that YAML 1.1 (Compose v1) or 1.2 reads as true/false or null.
YAML_WORDS = ["null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"]
NAMES = st.one_of(st.sampled_from(BAD_NAMES), st.sampled_from(YAML_WORDS),
                  st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True), st.text(max_size=70))

SUBNET_TEXTS = [
    "172.17.0.0/16", "172.17.5.0/24", "172.16.0.0/12", "172.31.255.0/24", "192.168.0.0/16",
    "192.168.1.0/24", "10.0.0.0/8", "10.0.0.0/24", "10.0.0.0/16", "10.0.0.128/25",
    "0.0.0.0/0", "0.0.0.0/24", "127.0.0.0/24", "169.254.0.0/24", "224.0.0.0/24",
    "240.0.0.0/24", "255.255.255.0/24", "198.51.100.1/32", "198.51.100.0/24",
    "198.51.100.0/25", "198.51.100.128/25", "203.0.113.0/24", "198.18.0.0/16", "::/0",
    "fd00::/64", "2001:db8::/32", "::ffff:10.0.0.0/120", "10.0.0.1/24", "10.0.0.0/33",
    "10.0.0.0/-1", "256.0.0.0/24", "10.0.0.0", "10.0.0.0/255.255.255.0", "", " ",
    "10.0.0.0/24\n", "\uff11\uff10.0.0.0/24", "010.000.000.000/24", "10.0.0.0 /24",
]
SUBNETS = st.one_of(
    st.sampled_from(SUBNET_TEXTS),
    st.builds(lambda ip, p: f"{ip}/{p}", st.ip_addresses(v=4), st.integers(0, 33)),
    st.builds(lambda ip, p: str(IPv4Network((int(ip), p), strict=False)),
              st.ip_addresses(v=4), st.integers(14, 30)),
    SCALARS,
)

TEMPLATE_PAYLOADS = [
    "{{ ''.__class__.__mro__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}", "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}", "{{ lipsum.__globals__['os'] }}", "{{ lipsum }}",
    "{{ namespace.__init__.__globals__ }}", "{{ self }}", "{{ self.__dict__ }}", "{{ config }}",
    "{{ request }}", "{{ ip.__globals__ }}", "{{ wg_private_key.__globals__ }}",
    "{{ ip.__code__ }}", "{{ params.__class__ }}", "{{ addr.__class__.__base__ }}",
    "{{ 'x'|attr('__class__') }}", "{{ '%s'|format(cycler) }}", "{{ ''.format.__self__ }}",
    "{% for %}", "{% for x in %}{% endfor %}", "{% for x in addr %}", "{% if %}", "{% endif %}",
    "{{", "}}", "{{ }}", "{%", "%}", "{#", "{# unclosed", "{{ 1/0 }}", "{{ 1 // 0 }}",
    "{{ nope }}", "{{ nope.nope }}", "{{ addr['nope.nope'] }}", "{{ subnet.nope }}",
    "{{ params.nope }}", "{{ ip('nope', 1) }}", "{{ ip('net', 10**6) }}", "{{ ip('net', 'x') }}",
    "{{ ip('net', -99999999999) }}", "{{ range(10**9)|list }}", "{{ wg_public_key(1) }}",
    "{{ wg_private_key('k') }}", "{% raw %}{{ stays }}{% endraw %}", "{% raw %}",
    "{% endraw %}", "{{ '{{' }}", "{{ (" * 30 + "1" + ") }}" * 30, "{{ " + "[" * 200 + " }}",
    "{{ " + "(" * 500 + "1" + ")" * 500 + " }}", "{% if true %}" * 60 + "x" + "{% endif %}" * 60,
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "{% include 'compose.yaml.j2' %}",
    "{% import 'os' as os %}", "{% extends 'base' %}", "{% set x = 'a' %}{{ x * 3 }}",
    "{{ token }}\nprivileged: true", "{{ '\\n    privileged: true\\n' }}", "{{ '\"' }}",
    "{{ '$' ~ '{HOME}' }}", "{{ token ~ '\\u2028' }}", "{{ '\\x00' }}",
    "{{ 1/0 if instance != lab else '' }}", "{{ nope if instance != lab else 'ok' }}",
    "{{ 1/0 if token.startswith('<') else '' }}",
    "{{ addr[instance ~ '.wan'] if instance != lab else '' }}",
    "{{ lab }} {{ instance }} {{ token }} {{ addr['a.wan'] }} {{ subnet['net'] }}",
]
TEMPLATES = st.one_of(st.sampled_from(TEMPLATE_PAYLOADS),
                      st.builds(lambda a, b: a + b, st.sampled_from(TEMPLATE_PAYLOADS), WEIRD))

# Texts that are templates (rendered), and texts that are only shown; both as key paths.
TEMPLATE_SLOTS: list[tuple[Any, ...]] = [
    ("story",), ("access",), ("tasks", 0, "title"), ("tasks", 0, "text"), ("nodes", "a", "setup"),
    ("nodes", "b", "setup"), ("nodes", "a", "files", "/etc/motd.d/a"),
    ("nodes", "a", "files", "/root/new"), ("nodes", "a", "services", 0, "run"),
    ("checks", 0, "title"), ("checks", 0, "hint"), ("checks", 0, "probes", 0, "to"),
    ("checks", 0, "probes", 0, "path"), ("checks", 0, "probes", 0, "expect", "seen_source"),
    ("solution", "a"), ("solution", "b"), ("wrong_solutions", 0, "apply", "c"),
    ("nodes", "a", "role"), ("nodes", "b", "role"),
]
PLAIN_SLOTS: list[tuple[Any, ...]] = [
    ("title",), ("summary",),
    ("networks", "net", "label"), ("concepts", 0), ("wrong_solutions", 0, "description"),
]


# ------------------------------------------------------------------------------------------------
# Mutations: each changes `data` in place and says what it did.


def walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, path + (i,))


def get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def can_set(data: Any, path: tuple[Any, ...]) -> bool:
    try:
        parent = get(data, path[:-1])
    except (KeyError, IndexError, TypeError):
        return False
    last = path[-1]
    return isinstance(parent, dict) or (isinstance(parent, list) and isinstance(last, int)
                                        and last < len(parent))


def put(data: Any, path: tuple[Any, ...], value: Any) -> None:
    get(data, path[:-1])[path[-1]] = value


Draw = Callable[[st.SearchStrategy[Any]], Any]


def m_unknown_key(draw: Draw, data: Any) -> str:
    where = draw(st.sampled_from([p for p, v in walk(data) if isinstance(v, dict)]))
    key, value = draw(KEYS), draw(VALUES)
    get(data, where)[key] = value
    return f"add {key!r}: {value!r} at {where}"


def m_wrong_type(draw: Draw, data: Any) -> str:
    where = draw(st.sampled_from([p for p, _ in walk(data) if p]))
    value = draw(VALUES)
    put(data, where, value)
    return f"set {where} = {value!r}"


def m_delete(draw: Draw, data: Any) -> str:
    where = draw(st.sampled_from([p for p, _ in walk(data) if p]))
    del get(data, where[:-1])[where[-1]]
    return f"delete {where}"


def rename(tree: Any, old: str, new: str, key_holders: set[str], ref_keys: set[str],
           prefix: str = "") -> None:
    """Rename mapping key `old` under the keys in key_holders, and the references to it (string
    values of keys in ref_keys, whole or before a dot, and addr['...'] in templates)."""
    full_old, full_new = prefix + old, prefix + new

    def visit(value: Any, parent: Any) -> Any:
        if isinstance(value, dict):
            if parent in key_holders and old in value and new not in value:
                items = [(new if k == old else k, v) for k, v in value.items()]
                value.clear()
                value.update(items)
            for k in list(value):
                v = value[k]
                if isinstance(v, str) and k in ref_keys:
                    if v == full_old:
                        value[k] = full_new
                    elif v.startswith(full_old + "."):
                        value[k] = full_new + v[len(full_old):]
                else:
                    value[k] = visit(v, k)
            return value
        if isinstance(value, list):
            return [visit(item, parent) for item in value]
        if isinstance(value, str):
            return value.replace(f"'{full_old}.", f"'{full_new}.").replace(
                f"'{full_old}'", f"'{full_new}'")
        return value

    visit(tree, None)


def m_rename(draw: Draw, data: Any) -> str:
    new = draw(NAMES)
    nodes = data.get("nodes") if isinstance(data, dict) else None
    nets = data.get("networks") if isinstance(data, dict) else None
    choices = []
    if isinstance(nodes, dict) and nodes:
        choices.append("node")
        ifaced = [n for n, s in nodes.items() if isinstance(s, dict)
                  and isinstance(s.get("interfaces"), dict) and s["interfaces"]]
        if ifaced:
            choices.append("interface")
    if isinstance(nets, dict) and nets:
        choices.append("network")
    if not choices:
        return "rename: nothing to rename"
    what = draw(st.sampled_from(choices))
    if what == "node":
        old = draw(st.sampled_from(list(nodes)))
        if not isinstance(old, str):
            return "rename: a key that is not text (another mutation made it so)"
        rename(data, old, new, {"nodes", "solution", "apply"},
               {"from", "to", "via", "seen_source", "peer", "tunnel", "at"})
    elif what == "network":
        old = draw(st.sampled_from(list(nets)))
        if not isinstance(old, str):
            return "rename: a key that is not text (another mutation made it so)"
        rename(data, old, new, {"networks"}, {"network", "to"})
    else:
        node = draw(st.sampled_from(ifaced))
        old = draw(st.sampled_from(list(nodes[node]["interfaces"])))
        if not isinstance(old, str) or not isinstance(node, str):
            return "rename: a key that is not text (another mutation made it so)"
        ifaces = nodes[node]["interfaces"]
        if new not in ifaces:
            nodes[node]["interfaces"] = {new if k == old else k: v for k, v in ifaces.items()}
        rename(data, old, new, set(), {"to", "via", "seen_source", "peer", "tunnel"},
               prefix=f"{node}.")
    return f"rename {what} {old!r} to {new!r}"


def m_host(draw: Draw, data: Any) -> str:
    hosts = [p for p, v in walk(data) if len(p) == 5 and p[0] == "nodes" and p[4] == "host"]
    if not hosts:
        return "host: no interface"
    where = draw(st.sampled_from(hosts))
    others = [get(data, p) for p in hosts if p != where]
    value = draw(st.one_of(st.sampled_from(others or [1]), st.integers(-3, 300),
                           st.sampled_from([0, 253, 254, 255, 2**31, 2**64, -(2**63)])))
    put(data, where, value)
    return f"set {where} = {value!r}"


def m_network(draw: Draw, data: Any) -> str:
    """Set (or add a network with) a `prefer`, maybe a prefix, and maybe wire a node to it."""
    nets = data.get("networks") if isinstance(data, dict) else None
    if not isinstance(nets, dict):
        return "network: no networks"
    name = draw(st.one_of(st.sampled_from(list(nets) or ["net"]),
                          st.sampled_from(["other", "lan2", "dmz"])))
    spec = nets.get(name)
    if not isinstance(spec, dict):
        spec = nets[name] = {"kind": draw(st.sampled_from(["public", "private"]))}
    spec["prefer"] = draw(SUBNETS)
    if draw(st.booleans()):
        spec["prefix"] = draw(st.one_of(st.integers(14, 30), st.sampled_from([0, 32, 33, -1])))
    if draw(st.booleans()):
        spec["virtual"] = draw(st.booleans())
    nodes = data.get("nodes")
    if isinstance(nodes, dict) and nodes and draw(st.booleans()):
        node = draw(st.sampled_from(list(nodes)))
        if isinstance(nodes[node], dict) and isinstance(nodes[node].get("interfaces"), dict):
            nodes[node]["interfaces"][draw(st.sampled_from(["lan", "wan", "dmz", "x"]))] = {
                "network": name, "host": draw(st.integers(1, 20))}
    return f"network {name} = {spec!r}"


def m_add_node(draw: Draw, data: Any) -> str:
    nodes = data.get("nodes") if isinstance(data, dict) else None
    nets = data.get("networks") if isinstance(data, dict) else None
    if not isinstance(nodes, dict) or not isinstance(nets, dict) or not nets:
        return "add node: nowhere"
    name = draw(st.one_of(NAMES, st.sampled_from(["c", "d", "router"])))
    iface = draw(st.one_of(st.sampled_from(["wan", "lan", "eth0"]), NAMES))
    spec: dict[str, Any] = {"interfaces": {iface: {"network": draw(st.sampled_from(list(nets))),
                                                   "host": draw(st.integers(1, 12))}}}
    if draw(st.booleans()):
        spec["role"] = draw(TEXT)
    if draw(st.booleans()):
        spec["setup"] = draw(st.one_of(TEXT, TEMPLATES))
    nodes[name] = spec
    return f"add node {name!r}: {spec!r}"


def m_template(draw: Draw, data: Any) -> str:
    slots = [s for s in TEMPLATE_SLOTS + PLAIN_SLOTS if can_set(data, s)]
    if not slots:
        return "template: no slot"
    where = draw(st.sampled_from(slots))
    payload = draw(TEMPLATES)
    try:
        old = get(data, where)
    except (KeyError, IndexError):
        old = None
    value = (old + payload) if isinstance(old, str) and draw(st.booleans()) else payload
    put(data, where, value)
    return f"set {where} = {value!r}"


# Renames, new nodes, networks and templates often leave a valid lab, which then must render
# safely: they come up more often than the mutations that always break a lab.
MUTATIONS = [m_unknown_key, m_wrong_type, m_delete, m_rename, m_rename, m_host, m_network,
             m_network, m_add_node, m_template, m_template]


@st.composite
def hostile_labs(draw: Draw) -> tuple[dict[str, Any], list[str]]:
    data = draw(st.sampled_from(BASES))()
    done = []
    for _ in range(draw(st.integers(1, 3))):
        done.append(draw(st.sampled_from(MUTATIONS))(draw, data))
    return data, done


# ------------------------------------------------------------------------------------------------
# The properties.


@FUZZ
@given(hostile_labs(), st.booleans())
def test_hostile_labs_are_valid_or_one_clear_error(case: tuple[dict[str, Any], list[str]],
                                                   unicode: bool) -> None:
    data, done = case
    for step in done:
        say(step)
    judge(dump(data, unicode=unicode), data)


def unknown_key_targets() -> list[tuple[tuple[Any, ...], tuple[str, ...]]]:
    """The closed mappings of the rich lab, each with the keys it allows."""
    from portlab.model import checkspec as C
    from portlab.model import loader as L

    return [
        ((), L.TOP_KEYS), (("networks", "net"), L.NETWORK_KEYS), (("nodes", "a"), L.NODE_KEYS),
        (("nodes", "c"), L.NODE_KEYS), (("nodes", "a", "interfaces", "wan"), L.IFACE_KEYS),
        (("nodes", "a", "services", 0), L.SERVICE_KEYS),
        (("nodes", "a", "services", 0, "ready"), L.READY_KEYS),
        (("nodes", "c", "routes", 0), L.ROUTE_KEYS), (("tasks", 0), L.TASK_KEYS),
        (("checks", 0), C.CHECK_KEYS), (("checks", 1, "probes", 0, "expect"), ("state", "banner")),
        (("solution",), ("a", "b", "c")), (("wrong_solutions", 0), L.WRONG_KEYS),
        (("wrong_solutions", 0, "apply"), ("a", "b", "c")), (("untouched",), L.UNTOUCHED_KEYS),
    ]


@FEWER
@given(st.sampled_from(unknown_key_targets()), st.one_of(TEXT, st.sampled_from(
    ["privileged", "cap_add", "image", "command", "volumes", "network_mode", "pid", "titel",
     "nodse", "kind ", "Kind", "__proto__", "<<", ""])), PLAIN_VALUES)
def test_an_unknown_key_is_named_exactly(target: tuple[tuple[Any, ...], tuple[str, ...]],
                                         key: str, value: Any) -> None:
    where, allowed = target
    data = rich()
    if key in allowed or key in get(data, where):
        return
    get(data, where)[key] = value
    err = judge(dump(data), data)
    assert isinstance(err, LabError)
    assert err.key == dotted(where + (key,)), str(err)
    assert "unknown key" in err.detail


@FUZZ
@given(st.sampled_from(BASES), st.sampled_from(TEMPLATE_SLOTS + PLAIN_SLOTS),
       st.one_of(TEMPLATES, TEXT), st.booleans())
def test_injected_text_is_data_or_rejected_at_its_key(base: Callable[[], dict[str, Any]],
                                                       slot: tuple[Any, ...], payload: str,
                                                       append: bool) -> None:
    data = base()
    if not can_set(data, slot):
        data = rich()
    try:
        old = get(data, slot)
    except (KeyError, IndexError):
        old = ""
    put(data, slot, (old + payload) if append and isinstance(old, str) else payload)
    outcome = judge(dump(data), data)
    if slot in PLAIN_SLOTS:  # any text is fine where text is only shown
        assert isinstance(outcome, Lab), str(outcome)
    elif isinstance(outcome, LabError):
        assert outcome.key == dotted(slot), str(outcome)


def prefix_of(prefer: Any) -> int | None:
    if not isinstance(prefer, str):
        return None
    try:
        return IPv4Network(prefer, strict=False).prefixlen
    except (ValueError, TypeError):
        return None


def mostly(usual: st.SearchStrategy[Any], sometimes: st.SearchStrategy[Any]
           ) -> st.SearchStrategy[Any]:
    """`usual` four times in five (st.one_of would weigh each branch of `sometimes` alone)."""
    return st.integers(0, 4).flatmap(lambda n: sometimes if n == 4 else usual)


# Well-formed subnets anywhere in IPv4, mostly of sizes a lab may use (16 to 28).
ANY_SUBNETS = st.builds(lambda ip, p: str(IPv4Network((int(ip), p), strict=False)),
                        st.ip_addresses(v=4), st.integers(16, 28))


@FEWER
@given(st.lists(st.tuples(st.sampled_from(["public", "private"]),
                          mostly(ANY_SUBNETS, SUBNETS), mostly(st.none(), st.integers(14, 30))),
                min_size=1, max_size=3))
def test_subnets_are_disjoint_usable_and_not_dockers(
        nets: list[tuple[str, Any, int | None]]) -> None:
    data = minimal()
    for i, (kind, prefer, prefix) in enumerate(nets):
        size = prefix if prefix is not None else prefix_of(prefer)
        data["networks"][f"n{i}"] = {"kind": kind, "prefer": prefer,
                                     **({"prefix": size} if size is not None else {})}
        data["nodes"]["b"]["interfaces"][f"x{i}"] = {"network": f"n{i}", "host": 1}
    outcome = judge(dump(data), data)
    if isinstance(outcome, LabError):
        assert outcome.key.startswith(("networks", "nodes.b.interfaces.x")), str(outcome)


@FEWER
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(-1, 260)),
                min_size=1, max_size=6))
def test_addresses_are_unique_or_the_second_is_named(wiring: list[tuple[str, int]]) -> None:
    data = minimal()
    used: dict[int, str] = {}
    clash = None
    for node, host in wiring:
        spec = data["nodes"].setdefault(node, {"interfaces": {}})
        spec["interfaces"] = {"wan": {"network": "net", "host": host}}
    for node, spec in data["nodes"].items():
        host = spec["interfaces"]["wan"]["host"]
        if 1 <= host <= 253 and host in used and clash is None:
            clash = (f"nodes.{node}.interfaces.wan.host", used[host])
        used.setdefault(host, f"{node}.wan")
    outcome = judge(dump(data), data)
    if isinstance(outcome, Lab):
        assert clash is None
    elif clash is not None and "already used" in outcome.detail:
        assert outcome.key == clash[0] and f"used by {clash[1]}" in outcome.detail


@FEWER
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    judge(text)


@FEWER
@given(VALUES)
def test_arbitrary_yaml_documents(value: Any) -> None:
    judge(dump(value), value)


# YAML's own features: tags, anchors, aliases, merge keys, odd scalars, in flow style.
PWNED: list[str] = []


def pwn(*args: Any) -> None:  # what a !!python/object/apply tag would call, if it could
    PWNED.append(repr(args))


class Pwn:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        PWNED.append("Pwn()")

    def __setstate__(self, state: Any) -> None:
        PWNED.append("Pwn.__setstate__")


TAGS = [
    "!!python/object/apply:tests.unit.test_lab_hostile.pwn",
    "!!python/object/new:tests.unit.test_lab_hostile.Pwn",
    "!!python/object:tests.unit.test_lab_hostile.Pwn", "!!python/name:os.system",
    "!!python/module:os", "!!python/tuple", "!!python/str", "!!set", "!!omap", "!!pairs",
    "!!binary", "!!timestamp", "!!int", "!!float", "!!bool", "!!null", "!!str", "!!map", "!!seq",
    "!!merge", "!!value", "!custom", "!", "!<tag:example.com,2000:x>",
]
PLAIN_SCALARS = ["x", "1", "-1", "1.5", "2020-13-45", "2020-02-30", "2020-01-01",
                 "2001-12-14t21:59:43.10-05:00", "12:30:00", "190:20:30", "0x1F", "0o17",
                 "0b101", "1_000", ".inf", "-.inf",
                 ".nan", "~", "null", "yes", "off", "=", "<<", "a.wan", "b.wan", "80", "true",
                 "AAAA", "!!", "9" * 400]


@st.composite
def flow(draw: Draw, depth: int = 0) -> str:
    """A YAML flow-style value built from YAML's features."""
    choices = ["scalar", "quoted", "alias"] + (["seq", "map", "anchor", "tag", "merge"]
                                                if depth < 3 else [])
    kind = draw(st.sampled_from(choices))
    if kind == "scalar":
        return draw(st.sampled_from(PLAIN_SCALARS))
    if kind == "quoted":
        return json.dumps(draw(st.text(max_size=10)))  # \u escapes: lone surrogates too
    if kind == "alias":
        return "*" + draw(st.sampled_from(["a", "b", "undefined"]))
    if kind == "seq":
        return "[" + ", ".join(draw(st.lists(flow(depth + 1), max_size=3))) + "]"
    if kind == "map":
        items = draw(st.lists(st.tuples(flow(depth + 1), flow(depth + 1)), max_size=3))
        return "{" + ", ".join(f"? {k} : {v}" for k, v in items) + "}"
    if kind == "anchor":
        return f"&{draw(st.sampled_from(['a', 'b']))} {draw(flow(depth + 1))}"
    if kind == "tag":
        return f"{draw(st.sampled_from(TAGS))} {draw(flow(depth + 1))}"
    return "{<<: " + draw(flow(depth + 1)) + ", x: 1}"


RICH_PATHS = [p for p, _ in walk(rich()) if p]


@st.composite
def retag(draw: Draw, value: Any) -> str:
    """`value` in flow style behind a YAML tag (or an anchor): only the tag is wrong, if any."""
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, width=10**6)
    text = text.strip().removesuffix("...").strip()
    return f"{draw(st.sampled_from(TAGS + ['&a', '&b']))} {text}"


def composed(text: str, *, libyaml: bool) -> tuple[Any, ...]:
    """What yamlsrc makes of `text`: its data and lines, or its error, by libyaml's composer
    (for a plain document) or by portlab's own alone."""
    saved = yamlsrc._plain
    if not libyaml:
        yamlsrc._plain = lambda text: None  # type: ignore[assignment]
    try:
        src = yamlsrc._load.__wrapped__(text, FILE)
        return ("read", src.data, src.lines)
    except LabError as err:
        return ("refused", str(err))
    finally:
        yamlsrc._plain = saved


@FEWER
@given(st.one_of(flow(), VALUES.map(dump)))
def test_libyaml_and_portlab_s_own_composer_read_every_document_alike(text: str) -> None:
    assert composed(text, libyaml=True) == composed(text, libyaml=False)


def test_every_lab_is_read_alike_by_both_composers_and_libyaml_is_used() -> None:
    for path in sorted(Path("labs").glob("*/lab.yaml")):
        text = path.read_text()
        assert composed(text, libyaml=True) == composed(text, libyaml=False), path
        assert yamlsrc._plain(text) is not None, path  # a plain document: the fast path
    for text in ("a: &x 1\nb: *x\n", "a: &x 1\n", "[" * 40 + "]" * 40, "a: 1\n---\nb: 2\n",
                 "a: \ud800b\n", "\ud800", "a: \x00\n"):
        assert yamlsrc._plain(text) is None, text  # portlab's own composer decides
    for text in ("\ufeffa: 1\n", "a: 1\r\nb: [2, {c: 3}]\r\n", "", "# only a comment\n",
                 "a: \ud800b\n", "a: 'x\n  y'\nb: |\n  z\n"):
        assert composed(text, libyaml=True) == composed(text, libyaml=False), text


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(RICH_PATHS), st.booleans(), st.data()),
                min_size=1, max_size=3))
def test_yaml_tags_anchors_aliases_and_merges(
        fragments: list[tuple[tuple[Any, ...], bool, st.DataObject]]) -> None:
    data = rich()
    marks = {}
    for i, (where, keep, draws) in enumerate(fragments):
        if can_set(data, where):
            fragment = draws.draw(retag(get(data, where)) if keep else flow(), label=str(where))
            put(data, where, f"HOSTILE-{i}")
            marks[f"HOSTILE-{i}"] = fragment
    text = dump(data)
    for mark, fragment in marks.items():
        text = text.replace(mark, fragment)
    PWNED.clear()
    outcome = judge(text)
    assert not PWNED, "a YAML tag ran code"
    if re.search(r"!!python/|!custom|!<tag:", text):
        assert isinstance(outcome, LabError), "a lab with a Python or unknown YAML tag is invalid"


# ------------------------------------------------------------------------------------------------
# Attacks on the YAML reader itself, each with a deadline: they must fail fast, not hang.


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    if not hasattr(signal, "setitimer") or threading.current_thread() != threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took more than {seconds}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def laughs(levels: int = 9) -> str:
    lines = ['lol0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def with_extra(extra: str) -> str:
    return dump(minimal()) + extra


YAML_ATTACKS = {
    "billion laughs": (with_extra("params:\n" + "".join(
        "  " + ln + "\n" for ln in laughs().splitlines())), "params.lol1[0]"),
    "billion laughs at the top": (laughs() + dump(minimal()), "lol1[0]"),
    "recursive list": (with_extra("story: &s [*s]\n"), "story[0]"),
    "recursive mapping": (with_extra("params: &p {x: *p}\n"), "params.x"),
    "alias of a node": (dump(minimal()).replace("nodes:\n  a:", "nodes:\n  a: &n").replace(
        "  b:\n", "  c: *n\n  b:\n"), "nodes.c"),
    "merge key": (with_extra("params: {<<: {x: 1}}\n"), "params"),
    "deep list": (with_extra("story: " + "[" * 20_000 + "]" * 20_000 + "\n"), ""),
    "deep mapping": (with_extra("story: " + "{a: " * 5_000 + "x" + "}" * 5_000 + "\n"), ""),
    "python object": (with_extra("params: !!python/object/apply:tests.unit.test_lab_hostile.pwn"
                                 " [1]\n"), "params"),
    "python object in a list": (with_extra(
        "concepts: [!!python/object/new:tests.unit.test_lab_hostile.Pwn [x]]\n"), "concepts[0]"),
    "python name": (dump(minimal()).replace("title: A tiny lab",
                                            "title: !!python/name:os.system"), "title"),
    "set": (with_extra("concepts: !!set {a, b}\n"), "concepts"),
    "python tag on a valid mapping": (dump(minimal()).replace(
        "nodes:\n", "nodes: !!python/object:tests.unit.test_lab_hostile.Pwn\n"), "nodes"),
    "python tag on a valid list": (dump(minimal()).replace(
        "checks:\n", "checks: !!python/object/apply:tests.unit.test_lab_hostile.pwn\n"),
        "checks"),
    "ordered map": (dump(minimal()).replace("solution:\n  a: 'true'", "solution: !!omap\n- a: "
                                            "'true'"), "solution"),
    "impossible date": (dump(minimal()).replace("title: A tiny lab", "title: 2020-13-45"),
                        "title"),
    "tagged float": (dump(minimal()).replace("host: 1", "host: !!float one"),
                     "nodes.a.interfaces.wan.host"),
    "tagged int": (dump(minimal()).replace("host: 1", "host: !!int one"),
                   "nodes.a.interfaces.wan.host"),
    "tagged bool": (dump(minimal()).replace("title: A tiny lab", "title: !!bool maybe"), "title"),
    "tagged timestamp": (dump(minimal()).replace("title: A tiny lab", "title: !!timestamp x"),
                         "title"),
    "lone surrogate": (dump(minimal()).replace("title: A tiny lab", 'title: "\\ud800"'), "title"),
    "NUL": (dump(minimal()).replace("A tiny lab", "A tiny\x00 lab"), ""),
    "U+2028 in a name": (dump(minimal()).replace("  a:", '  "a\\L":'), "nodes.a\u2028"),
    "newline in a name": (dump(minimal()).replace("  b:", '  "b\\n":').replace(
        "from: b", 'from: "b\\n"'), "nodes.b\n"),
    "escape codes": (dump(minimal()).replace("  b:", '  "\\e[2J\\e]0;pwned\\a":'), "nodes"),
}


@pytest.mark.parametrize("name", list(YAML_ATTACKS))
def test_yaml_attacks_fail_fast_with_a_clear_error(name: str) -> None:
    text, key = YAML_ATTACKS[name]
    PWNED.clear()
    with deadline(10):
        outcome = judge(text)
    assert not PWNED, "a YAML tag ran code"
    assert isinstance(outcome, LabError), f"accepted: {name}"
    assert outcome.key == key or (key and outcome.key.startswith(key)), str(outcome)


# ------------------------------------------------------------------------------------------------
# The CLI and the API: exit code 2, the file and the key, and nothing started.

CLI_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any] | str, str]] = {
    "unknown key": (lambda d: d["nodes"]["a"].update(privileged=True), "nodes.a.privileged"),
    "wrong type": (lambda d: d["nodes"]["a"]["interfaces"]["wan"].update(host="one"),
                   "nodes.a.interfaces.wan.host"),
    "duplicate address": (lambda d: d["nodes"]["b"]["interfaces"]["wan"].update(host=1),
                          "nodes.b.interfaces.wan.host"),
    "overlapping subnets": (lambda d: d["networks"].update(
        other={"kind": "private", "prefer": "198.51.100.128/25", "prefix": 25}),
        "networks.other.prefer"),
    "docker's pool": (lambda d: d["networks"]["net"].update(prefer="192.168.1.0/24"),
                      "networks.net.prefer"),
    "bad node name": (lambda d: d["nodes"].update(Router_1=d["nodes"].pop("b")),
                      "nodes.Router_1"),
    "template injection": (lambda d: d["nodes"]["a"].update(
        setup="{{ cycler.__init__.__globals__.os.popen('id').read() }}"), "nodes.a.setup"),
    "template syntax": (lambda d: d["checks"][0].update(hint="{% for %}"), "checks[0].hint"),
    "python tag": ("title: !!python/object/apply:os.system ['echo pwned']", "title"),
    "billion laughs": ("params:\n" + "".join("  " + ln + "\n" for ln in laughs().splitlines()),
                       "params.lol1[0]"),
    "impossible date": ("title: 2020-13-45", "title"),
}


def write_lab(root: Path, case: str) -> Path:
    change, _ = CLI_CASES[case]
    data = minimal()
    data["name"] = "hostile"
    if callable(change):
        change(data)
        text = dump(data)
    else:  # a line of YAML text, replacing the line for the same key
        text = dump(data).replace("title: A tiny lab\n", "" if change.startswith("title:") else
                                  "title: A tiny lab\n") + change + "\n"
    lab_file = root / "labs" / "hostile" / "lab.yaml"
    lab_file.parent.mkdir(parents=True)
    lab_file.write_text(text, encoding="utf-8")
    return lab_file


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything that reaches for Docker or Compose fails the test loudly."""
    from portlab.backend.docker import client as docker_api
    from portlab.backend.docker import compose

    def touched(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("docker touched")

    monkeypatch.setattr(docker_api, "client", touched)
    monkeypatch.setattr(compose, "run", touched)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_says_file_and_key_and_exits_2(case: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           no_docker: None) -> None:
    lab_file = write_lab(tmp_path, case)
    key = CLI_CASES[case][1]
    monkeypatch.setenv("PORTLAB_LABS_PATH", str(lab_file.parent.parent))
    for command in (["render", "hostile"], ["show", "hostile"]):
        with deadline(20):
            result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert result.stdout == ""
        first = result.stderr.splitlines()
        assert len(first) == 1, result.stderr
        assert first[0].startswith(f"portlab: {lab_file}:"), result.stderr
        assert f": {key}: " in first[0], result.stderr
        assert "Traceback" not in result.output and "internal error" not in result.output
    with pytest.raises(LabError) as info, deadline(20):  # before Docker: nothing half-started
        core.up("hostile")
    assert info.value.file == str(lab_file) and info.value.key == key


def test_cli_in_a_real_process_fails_fast_without_traceback(tmp_path: Path) -> None:
    lab_file = write_lab(tmp_path, "billion laughs")
    import os

    env = {**os.environ, "PORTLAB_LABS_PATH": str(lab_file.parent.parent),
           "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    proc = subprocess.run([sys.executable, "-m", "portlab", "render", "hostile"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"portlab: {lab_file}:") and "params.lol1[0]" in proc.stderr
    assert "Traceback" not in proc.stderr and "Docker" not in proc.stderr


@pytest.mark.parametrize("name", ["x\n", "fuzz\n", "a" * 41, "-x", "X", "", "a b", "a\u2028"])
def test_instance_names_are_checked_whole(name: str) -> None:
    with pytest.raises(PortlabError) as info:
        check_instance_name(name)
    assert "not a valid instance name" in str(info.value)


@pytest.mark.parametrize("scope", ["x\n", "a" * 21, "A", "a b"])
def test_scope_names_are_checked_whole(scope: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from portlab.backend.docker import client as docker_api

    monkeypatch.setenv("PORTLAB_SCOPE", scope)
    with pytest.raises(PortlabError):
        docker_api.scope()
