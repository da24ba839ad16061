"""The lab loader: valid labs load; every mistake names the file, the line and the key."""

from __future__ import annotations

from typing import Any

import pytest

from portlab import core
from portlab.errors import LabError
from portlab.model.loader import parse
from tests.unit.labfiles import minimal, parse_data, text_of


def test_builtin_labs_load_and_are_complete() -> None:
    labs = core.labs()
    assert "forwarding" in {lab.name for lab in labs}
    for lab in labs:
        assert lab.solution, f"{lab.name} has a reference solution"
        assert lab.untouched_fails, f"{lab.name} says which checks fail untouched"
        assert lab.tasks and lab.story


def test_minimal_lab_loads() -> None:
    lab = parse_data(minimal())
    assert [n.name for n in lab.nodes] == ["a", "b"]
    assert lab.check("web") is not None


def error_of(data: dict[str, Any]) -> LabError:
    with pytest.raises(LabError) as info:
        parse_data(data)
    return info.value


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    data = minimal()
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()

CASES = [
    # (what is changed, value, key named in the error, words in the message)
    (["titel"], "x", "titel", "unknown key"),
    (["nodes", "a", "interfaces", "wan", "host"], "one", "nodes.a.interfaces.wan.host",
     "whole number"),
    (["nodes", "a", "interfaces", "wan", "host"], 2, "nodes.b.interfaces.wan.host",
     "already used by a.wan"),
    (["nodes", "a", "interfaces", "wan", "host"], 254, "nodes.a.interfaces.wan.host",
     "from 1 to 253"),
    (["nodes", "Bad_Name"], {"interfaces": {"wan": {"network": "net", "host": 3}}},
     "nodes.Bad_Name", "not a valid node name"),
    (["nodes", "a", "interfaces", "eth0"], {"network": "net", "host": 9},
     "nodes.a.interfaces.eth0", "reserved"),
    (["nodes", "a", "interfaces", "wan", "network"], "lan", "nodes.a.interfaces.wan.network",
     "no network called 'lan'"),
    (["networks", "net", "kind"], "dmz", "networks.net.kind", "public"),
    (["networks", "net", "prefer"], "172.17.5.0/24", "networks.net.prefer",
     "Docker's default address pools"),
    (["networks", "net", "prefer"], "not-a-subnet", "networks.net.prefer", "not an IPv4 subnet"),
    (["networks", "other"], {"kind": "private", "prefer": "198.51.100.0/24"},
     "networks.other.prefer", "overlaps network 'net'"),
    (["checks", 0, "probes", 0, "kind"], "telepathy", "checks[0].probes[0].kind",
     "unknown probe kind"),
    (["checks", 0, "probes", 0, "from"], "c", "checks[0].probes[0].from", "no node called 'c'"),
    (["checks", 0, "probes", 0, "to"], "a.lan", "checks[0].probes[0].to",
     "not a node.interface"),
    (["checks", 0, "probes", 0, "expect"], {"tokn": True}, "checks[0].probes[0].expect.tokn",
     "did you mean 'token'"),
    (["checks", 0, "probes", 0, "port"], 70000, "checks[0].probes[0].port", "1 to 65535"),
    (["checks"], [], "checks", "at least one check"),
    (["nodes", "a", "services", 0, "run"], "serve {{ tokn }}", "nodes.a.services[0].run",
     "undefined"),
    (["nodes", "a", "setup"], "{% if %}", "nodes.a.setup", "template error"),
    (["nodes", "a", "setup"], "{{ ''.__class__.__mro__ }}", "nodes.a.setup", "not allowed"),
    (["nodes", "b", "routes"], [{"to": "default", "via": "a.lan"}], "nodes.b.routes[0].via",
     "not a node.interface"),
    (["nodes", "b", "routes"], [{"to": "nowhere", "via": "a.wan"}], "nodes.b.routes[0].to",
     "network name or an IPv4 subnet"),
    (["solution"], {"c": "true"}, "solution.c", "unknown key"),
    (["name"], "other", "name", "folder name"),
    (["summary"], DELETE, "", "missing required key 'summary'"),
    (["untouched"], {"fails": ["nope"]}, "untouched.fails[0]", "no check with id 'nope'"),
]


@pytest.mark.parametrize(("path", "value", "key", "words"), CASES,
                         ids=[".".join(map(str, c[0])) + "=" + str(c[1])[:20] for c in CASES])
def test_mistakes_name_file_line_and_key(path: list[Any], value: Any, key: str,
                                         words: str) -> None:
    err = error_of(mutate(path, value))
    text = str(err)
    assert text.startswith("labs/mini/lab.yaml:"), text
    assert err.line is not None and err.line > 0
    assert err.key == key, text
    assert words in text, text


def test_duplicate_keys_are_rejected_with_both_lines() -> None:
    text = text_of(minimal()) + "title: again\n"
    with pytest.raises(LabError) as info:
        parse(text, "labs/mini/lab.yaml")
    assert "appears twice (first on line 2)" in str(info.value)


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(LabError) as info:
        parse("name: x\n  bad: [unclosed\n", "lab.yaml")
    assert str(info.value).startswith("lab.yaml:")
    assert "not valid YAML" in str(info.value)


def test_empty_file_is_an_error() -> None:
    with pytest.raises(LabError) as info:
        parse("", "lab.yaml")
    assert "expected a mapping" in str(info.value)


@pytest.mark.parametrize(("after", "message"), [
    (["nobody"], "nodes.b.after[0]: no node called 'nobody'. Nodes: a, b"),
    (["b"], "nodes.b.after[0]: a node cannot start after itself"),
])
def test_after_names_other_nodes(after: list[str], message: str) -> None:
    data = minimal()
    data["nodes"]["b"]["after"] = after
    with pytest.raises(LabError) as err:
        parse_data(data)
    assert message in str(err.value)


def test_nodes_that_start_after_each_other_are_refused() -> None:
    data = minimal()
    data["nodes"]["b"]["after"] = ["a"]
    assert parse_data(data).node("b").after == ("a",)
    data["nodes"]["a"]["after"] = ["b"]
    with pytest.raises(LabError, match=r"never start: a -> b -> a"):
        parse_data(data)



def test_hidden_params_are_named_params_and_the_brief_prints_them_as_unknown() -> None:
    from portlab.model.context import Binding
    from portlab.views import brief

    data = minimal()
    data["params"] = {"mystery_port": 5230, "web_port": 80}
    data["hidden_params"] = ["mystery_port"]
    lab = parse_data(data)
    assert lab.hidden_params == ("mystery_port",)
    header = brief.show(Binding.preview(lab), color=False).splitlines()[2]
    assert header.startswith("params: mystery_port=?, web_port=80")
    data["hidden_params"] = ["nope"]
    with pytest.raises(LabError, match="hidden_params\\[0\\]: no param called 'nope'"):
        parse_data(data)
