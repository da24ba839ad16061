"""The grading part of a lab file: `submission:`, `points:`, `pass_mark:` and `vary:`.

* `submission` lists the files a student hands in, in the order they are
  applied: a shell script run as root on a node (`file: router.sh, node:
  router`), or a file placed at a path on a node and then, optionally, a
  command run there (`file: laptop/wg0.conf, node: laptop, path:
  /etc/wireguard/wg0.conf, run: wg-quick up wg0`).
* `points` gives each check its points (a check not named there has 1);
  `pass_mark` is the points a grade needs (default: all of them).
* `vary` says what differs per student: params (`{from: 20000, to: 29999}`
  or `{choices: [...]}`) and network subnets (drawn inside a range), so that
  a solution copied from another student fails.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Any

from portlab.model import allocate
from portlab.model.reader import Reader, kind
from portlab.model.types import Check, Network, Node, ParamValue, Range, SubmissionFile, Vary
from portlab.model.yamlsrc import Path as KeyPath

SUBMISSION_KEYS = ("file", "node", "path", "mode", "run", "comment", "timeout", "solution")
VARY_KEYS = ("params", "networks")
RULE_KEYS = ("from", "to", "choices")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
DEFAULT_TIMEOUT = 30.0
MAX_POINTS = 1000


def submission(r: Reader, value: Any, nodes: tuple[Node, ...],
               solutions: dict[str, str]) -> tuple[SubmissionFile, ...]:
    out = []
    seen: set[str] = set()
    names = {n.name for n in nodes}
    for i, spec in enumerate(r.seq(value, ("submission",))):
        path: KeyPath = ("submission", i)
        spec = r.mapping(spec, path, allowed=SUBMISSION_KEYS, required=("file", "node"))
        file = r.text(spec["file"], path + ("file",))
        parts = file.split("/")
        if not all(FILE_NAME.fullmatch(p) for p in parts) or len(parts) > 3:
            raise r.error(path + ("file",), f"'{file}' is not a plain relative file name (like "
                          "router.sh or laptop/wg0.conf: letters, digits, '.', '_' and '-', "
                          "not starting with a dot)")
        r.unique(file, path + ("file",), seen, "the file")
        node = r.text(spec["node"], path + ("node",))
        if node not in names:
            raise r.error(path + ("node",), f"no node called '{node}'. Nodes: "
                          f"{', '.join(sorted(names))}")
        target = spec.get("path")
        if target is not None:
            target = r.text(target, path + ("path",))
            if not target.startswith("/") or ".." in target.split("/") or target.endswith("/"):
                raise r.error(path + ("path",), "must be an absolute file path without '..'")
        run = r.text(spec.get("run"), path + ("run",), optional=True)
        if run and target is None:
            raise r.error(path + ("run",), "a script is run itself; `run` goes with `path` "
                          "(a file placed on the node, then a command)")
        out.append(SubmissionFile(
            file=file, node=node, path=target, mode=_mode(r, spec.get("mode"), path + ("mode",),
                                                          0o755 if target is None else 0o644),
            run=run, comment=r.text(spec.get("comment"), path + ("comment",), optional=True),
            timeout=(r.seconds(spec["timeout"], path + ("timeout",), high=600)
                     if "timeout" in spec else DEFAULT_TIMEOUT),
            solution=r.text(spec.get("solution"), path + ("solution",), optional=True,
                            default=solutions.get(node, "") if target is None else "")))
    return tuple(out)


def _mode(r: Reader, value: Any, path: KeyPath, default: int) -> int:
    if value is None:
        return default
    text = value if isinstance(value, str) else None
    if text is None or not re.fullmatch(r"0?[0-7]{3}", text):
        raise r.error(path, f"expected a file mode in quotes, like \"0600\", got {kind(value)}")
    return int(text, 8)


def points(r: Reader, value: Any, checks: tuple[Check, ...]) -> dict[str, int]:
    given = r.mapping(value or {}, ("points",), allowed=tuple(c.id for c in checks))
    return {c.id: (r.integer(given[c.id], ("points", c.id), low=0, high=MAX_POINTS)
                   if c.id in given else 1) for c in checks}


def pass_mark(r: Reader, value: Any, total: int) -> int:
    if value is None:
        return total
    return r.integer(value, ("pass_mark",), low=0, high=total)


def vary(r: Reader, value: Any, params: dict[str, ParamValue],
         networks: tuple[Network, ...]) -> Vary:
    if value is None:
        return Vary()
    spec = r.mapping(value, ("vary",), allowed=VARY_KEYS)
    rules: dict[str, Range | tuple[ParamValue, ...]] = {}
    raw = r.mapping(spec.get("params") or {}, ("vary", "params"), allowed=tuple(params))
    for name, rule in raw.items():
        path: KeyPath = ("vary", "params", name)
        rules[name] = _rule(r, rule, path, params[name])
    nets = {n.name: n for n in networks}
    subnets: dict[str, IPv4Network] = {}
    raw_nets = r.mapping(spec.get("networks") or {}, ("vary", "networks"), allowed=tuple(nets))
    for name, within in raw_nets.items():
        path = ("vary", "networks", name)
        net = nets[name]
        try:
            block = IPv4Network(r.text(within, path))
        except ValueError as exc:
            raise r.error(path, f"not an IPv4 subnet: {exc}") from None
        if block.prefixlen > net.prefix:
            raise r.error(path, f"{block} is smaller than one /{net.prefix} (the network's "
                          "prefix)")
        pools = allocate.PUBLIC_POOL if net.kind == "public" else allocate.PRIVATE_POOL
        if not any(block.subnet_of(p) for p in pools):
            where = ", ".join(map(str, pools))
            raise r.error(path, f"a {net.kind} network varies within its own ranges ({where}), "
                          f"which {block} is not inside")
        subnets[name] = block
    return Vary(rules, subnets)


def _rule(r: Reader, rule: Any, path: KeyPath,
          default: ParamValue) -> Range | tuple[ParamValue, ...]:
    rule = r.mapping(rule, path, allowed=RULE_KEYS)
    if "choices" in rule:
        if "from" in rule or "to" in rule:
            raise r.error(path, "either choices, or from and to: not both")
        items = r.seq(rule["choices"], path + ("choices",), optional=False)
        if not items:
            raise r.error(path + ("choices",), "give at least one choice")
        for i, item in enumerate(items):
            if type(item) is not type(default):
                raise r.error(path + ("choices", i), f"the param is {kind(default)}, so each "
                              f"choice must be of its type; got {kind(item)}")
        return tuple(items)
    if "from" not in rule or "to" not in rule:
        raise r.error(path, "expected {from: N, to: M} or {choices: [...]}")
    if isinstance(default, bool) or not isinstance(default, int):
        raise r.error(path, f"from/to needs a whole-number param; this one is {kind(default)}")
    low = r.integer(rule["from"], path + ("from",), low=-(2**31), high=2**31)
    high = r.integer(rule["to"], path + ("to",), low=low, high=2**31)
    return Range(low, high)
