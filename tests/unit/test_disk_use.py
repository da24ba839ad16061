"""A node's disk use, as the grade's watch reads it: the files of the container's writable
layer, counted as Docker counts SizeRw, without Docker's walk of the whole root file system."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from portlab.backend.base import NodeInfo
from portlab.backend.docker import nodes


def node(ref: str) -> NodeInfo:
    return NodeInfo(name="router", ref=ref, engine_name=ref, state="running", status="",
                    image="")


def test_a_layer_counts_its_files_once_and_never_follows_a_link(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "big").write_bytes(b"x" * 3000)
    os.link(tmp_path / "big", tmp_path / "a" / "same-file")  # one file, two names
    (tmp_path / "a" / "b" / "small").write_bytes(b"y" * 7)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_bytes(b"z" * 100000)
    (tmp_path / "a" / "link").symlink_to(outside)  # counted as a link, not what it names
    link_size = len(str(outside))
    assert nodes._tree_size(str(tmp_path)) == 3000 + 7 + link_size


def test_the_layer_is_read_only_from_a_local_engine(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    asked: list[str] = []

    class Api:
        base_url = "http://192.0.2.1:2375"  # an engine elsewhere: its paths are not ours

        def inspect_container(self, ref: str) -> dict[str, object]:
            asked.append(ref)
            return {"GraphDriver": {"Data": {"UpperDir": str(tmp_path)}}}

    monkeypatch.setattr(nodes.docker_api, "client", lambda: SimpleNamespace(api=Api()))
    monkeypatch.setattr(nodes, "_UPPER", {})
    assert nodes._upper_dir(node("remote1")) == ""
    Api.base_url = nodes.LOCAL_ENGINE
    assert nodes._upper_dir(node("local1")) == str(tmp_path)
    assert nodes._upper_dir(node("local1")) == str(tmp_path)  # asked once per container
    assert asked == ["local1"]
    (tmp_path / "f").write_bytes(b"q" * 42)
    assert nodes.written(node("local1")) == 42


def test_no_readable_layer_falls_back_to_dockers_count(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    class Api:
        base_url = nodes.LOCAL_ENGINE

        def inspect_container(self, ref: str) -> dict[str, object]:
            return {"GraphDriver": {"Name": "vfs", "Data": None}}  # no upper directory

        def _url(self, path: str, ref: str) -> str:
            return path.format(ref)

        def _get(self, url: str, params: dict[str, int]) -> tuple[str, dict[str, int]]:
            return url, params

        def _result(self, answer: tuple[str, dict[str, int]], json: bool) -> dict[str, int]:
            assert answer[1] == {"size": 1}
            return {"SizeRw": 1234}

    monkeypatch.setattr(nodes.docker_api, "client", lambda: SimpleNamespace(api=Api()))
    monkeypatch.setattr(nodes, "_UPPER", {})
    assert nodes.written(node("vfs1")) == 1234
