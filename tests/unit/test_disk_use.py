"""A node's disk use and processes, as the grade's watch reads them: the files of the
container's writable layer, counted as Docker counts SizeRw, without Docker's walk of the whole
root file system; the processes of its cgroup, without dockerd running the host's `ps`."""

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
    monkeypatch.setattr(nodes, "_LOCAL", {})
    assert nodes._local(node("remote1")).upper == ""
    Api.base_url = nodes.LOCAL_ENGINE
    assert nodes._local(node("local1")).upper == str(tmp_path)
    assert nodes._local(node("local1")).upper == str(tmp_path)  # asked once per container
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
    monkeypatch.setattr(nodes, "_LOCAL", {})
    assert nodes.written(node("vfs1")) == 1234


def test_processes_are_counted_in_the_nodes_cgroup(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """A local engine's container: the lines of its cgroup's `cgroup.procs`, and of the groups
    below it; cgroup v1's `pids` hierarchy first, v2's unified one otherwise. Docker's `top`
    is asked only where the cgroup cannot be read."""
    group = tmp_path / "pids" / "docker" / "c1"
    (group / "inner").mkdir(parents=True)
    (group / "cgroup.procs").write_text("1\n17\n18\n")
    (group / "inner" / "cgroup.procs").write_text("40\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("12:memory:/docker/c1\n5:pids:/docker/c1\n0::/docker/c1\n")
    real_open = open

    def fake_open(path: str, *args: object, **kwargs: object) -> object:
        if path == "/proc/4242/cgroup":
            path = str(proc)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(nodes, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr("builtins.open", fake_open)
    topped: list[str] = []

    class Api:
        base_url = nodes.LOCAL_ENGINE

        def inspect_container(self, ref: str) -> dict[str, object]:
            return {"State": {"Pid": 4242}, "GraphDriver": {"Data": None}}

        def top(self, ref: str) -> dict[str, object]:
            topped.append(ref)
            return {"Processes": [["root", "1"], ["root", "2"]]}

    monkeypatch.setattr(nodes.docker_api, "client", lambda: SimpleNamespace(api=Api()))
    monkeypatch.setattr(nodes, "_LOCAL", {})
    assert nodes.processes(node("c1")) == 4 and not topped
    proc.write_text("0::/docker/c1\n")  # cgroup v2: the one hierarchy
    (tmp_path / "docker" / "c1").mkdir(parents=True)
    (tmp_path / "docker" / "c1" / "cgroup.procs").write_text("1\n")
    monkeypatch.setattr(nodes, "_LOCAL", {})
    assert nodes.processes(node("c1")) == 1 and not topped
    proc.write_text("0::/../../etc\n")  # never outside the cgroup file system
    monkeypatch.setattr(nodes, "_LOCAL", {})
    assert nodes.processes(node("c1")) == 2 and topped == ["c1"]
