"""An exec whose output stream loses its framing (docker-py: "52 is not a valid stream", seen
with 50 labs checked at once) is an exec whose output was lost, not a crash: the command's
exit code still comes back once it is done, and callers read what it saved."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from portlab.backend.base import NodeInfo
from portlab.backend.docker import nodes


def test_a_stream_that_loses_its_framing_is_output_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    polls: list[str] = []

    class Api:
        def exec_create(self, ref: str, argv: list[str], **kw: object) -> dict[str, str]:
            return {"Id": "e1"}

        def exec_start(self, exec_id: str, **kw: object) -> Iterator[tuple[bytes, None]]:
            yield b"<nmaprun", None
            raise ValueError("52 is not a valid stream")

        def exec_inspect(self, exec_id: str) -> dict[str, object]:
            polls.append(exec_id)
            return {"Running": len(polls) < 3, "ExitCode": 0}

    monkeypatch.setattr(nodes.docker_api, "client", lambda: SimpleNamespace(api=Api()))
    node = NodeInfo("friend", "id-friend", "friend", "running", "Up", "img")
    got = nodes.exec_in(node, ["nmap", "-oX", "-", "router"])
    assert (got.exit_code, got.stdout, got.stderr) == (0, "", "")  # nothing half-read kept
    assert len(polls) == 4  # waited until the command was done, then read its exit code
