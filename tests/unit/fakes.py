"""Stand-ins for the backend seam, for probe tests without Docker."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from portlab.backend.base import ExecResult, Stream


class FakeNodes:
    """A NodeRunner whose commands are answered by `answer(node, argv)`."""

    def __init__(self, answer: Callable[[str, list[str]], ExecResult]) -> None:
        self.answer = answer

    def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
        return self.answer(node, list(argv))

    def stream(self, node: str, argv: Sequence[str]) -> Stream:
        raise AssertionError("no probe streams")


SECRET = "f" * 32  # the secret of the fake instances these tests judge (Binding(secret=...))


def nonce_of(argv: Sequence[str]) -> str:
    """The nonce portlab asked portlab-probe to send, or ""."""
    return argv[list(argv).index("--nonce") + 1] if "--nonce" in argv else ""


def served(argv: Sequence[str], node: str, client: str, *, secret: str = SECRET,
           seq: str = "", token: str = "x", **fields: str) -> dict[str, str]:
    """What a portlab-serve server on `node` answers a probe run as `argv` (its kind and
    nonce): the answer's fields with their proof, as portlab-probe reports them."""
    from portlab.node import answers

    kind = next((a for a in argv if a in ("http", "minecraft", "udp", "tcp")), "http")
    return answers.signed(answers.node_key(secret, node),
                          {"kind": kind, "node": node, "client": client, "server": "",
                           "nonce": nonce_of(argv), "seq": seq, "token": token, **fields})
