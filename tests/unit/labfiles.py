"""A minimal valid lab, as text, for tests to break in one place at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from portlab.model.loader import parse
from portlab.model.types import Lab

MINIMAL: dict[str, Any] = {
    "name": "mini",
    "title": "A tiny lab",
    "summary": "Two nodes on one network.",
    "networks": {"net": {"kind": "public", "prefer": "198.51.100.0/24"}},
    "nodes": {
        "a": {"interfaces": {"wan": {"network": "net", "host": 1}},
              "services": [{"name": "web",
                            "run": "portlab-serve http --port 80 --token {{ token }}",
                            "ready": {"tcp": 80}}]},
        "b": {"interfaces": {"wan": {"network": "net", "host": 2}}},
    },
    "checks": [{"id": "web", "title": "b reaches a's web server",
                "probes": [{"kind": "http", "from": "b", "to": "a.wan", "port": 80,
                            "expect": {"token": True}}]}],
    "solution": {"a": "true"},
}


def minimal() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL)


def text_of(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def parse_data(data: dict[str, Any], file: str = "labs/mini/lab.yaml") -> Lab:
    return parse(text_of(data), file, directory=Path(file).parent)
