"""The Docker connection: one client, clear errors, and the labels portlab puts on objects.

Every call to the Docker daemon goes through the client made here, inside
`guard`, so "Docker is not running" and "the daemon went away" are diagnosed
in one place, with one message each.
"""

from __future__ import annotations

import http.client
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from portlab.backend.labels import (  # noqa: F401  (this backend's names for them)
    LABEL_GRADER,
    LABEL_IMAGE,
    LABEL_INSTANCE,
    LABEL_INTERFACES,
    LABEL_INTERFACES6,
    LABEL_KEY_SEED,
    LABEL_LAB,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_NODE_IMAGE,
    LABEL_PARAMS,
    LABEL_PREFIX,
    LABEL_SCOPE,
    LABEL_SEAL,
    LABEL_SECRET,
    LABEL_STUDENT,
    LABEL_SUBNET,
    LABEL_SUBNETS,
    LABEL_TOKEN,
    LABEL_VPN,
)
from portlab.errors import BackendUnreachable, RuntimeProblem
from portlab.names import scope

_client: docker.DockerClient | None = None
_client_lock = threading.Lock()


def scope_filter(**more: str) -> dict[str, list[str]]:
    """Docker label filters for objects of this scope (and the given extra labels)."""
    labels = [f"{LABEL_SCOPE}={scope()}"] + [f"{k}={v}" for k, v in more.items()]
    return {"label": labels}


def client() -> docker.DockerClient:
    """The shared Docker client; raises RuntimeProblem with a plain reason if unreachable."""
    global _client
    with _client_lock:
        if _client is None:
            _client = _connect()
        return _client


def _connect() -> docker.DockerClient:
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        c = docker.from_env(timeout=120)
        c.ping()
        return c
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise BackendUnreachable(
                f"permission denied talking to Docker at {where}",
                hint="add your user to the 'docker' group (then log in again), or run as root",
            ) from None
        if "FileNotFoundError" in text or "No such file" in text or "Connection refused" in text \
                or "Connection aborted" in text:
            raise BackendUnreachable(
                f"Docker is not running (nothing answers at {where})",
                hint="start it (e.g. `sudo systemctl start docker`) and try again",
            ) from None
        raise BackendUnreachable(f"cannot reach Docker at {where}: {text}") from None
    except requests.exceptions.RequestException as exc:
        raise BackendUnreachable(f"cannot reach Docker at {where}: {exc}") from None


def reset() -> None:
    """Forget the client (tests, or after the daemon restarted)."""
    global _client
    with _client_lock:
        _client = None


def call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call and turn Docker's errors into a RuntimeProblem naming `what`."""
    with guard(what):
        return fn(*args, **kwargs)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn Docker's errors inside the block into a RuntimeProblem naming `what`.

    A lost connection (the daemon stopped, its socket went away, a stream was
    cut off half-way) is always the same clear message with a way back.
    """
    try:
        yield
    except docker.errors.NotFound as exc:
        raise RuntimeProblem(f"{what}: not found ({exc.explanation or exc})") from None
    except docker.errors.APIError as exc:
        raise RuntimeProblem(f"{what}: {exc.explanation or exc}") from None
    except docker.errors.DockerException as exc:
        if not _is_connection(exc):
            raise RuntimeProblem(f"{what}: {exc}") from None
        raise lost_connection(what) from None
    except CONNECTION_ERRORS:
        raise lost_connection(what) from None


# What a cut connection to the daemon looks like, depending on where it was cut: requests'
# errors (refused, reset, a chunked stream ended early), urllib3's and http.client's below
# them, and plain socket errors from the raw sockets `exec` reads.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def lost_connection(what: str = "") -> BackendUnreachable:
    reset()
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    prefix = f"{what}: " if what else ""
    reason = f"lost the connection to Docker at {where} (did the daemon stop?)"
    return BackendUnreachable(
        f"{prefix}{reason}", reason=reason,
        hint="start Docker again (e.g. `sudo systemctl start docker`); then `portlab status` "
             "shows what is left, `portlab up LAB` starts a lab again (removing a broken "
             "instance first) and `portlab down --all` removes everything")


def connection_problem(exc: BaseException) -> RuntimeProblem | None:
    """A RuntimeProblem if `exc` (or what caused it) is a cut connection to Docker, else None.

    For the CLI's last line of defence: a lost daemon is exit 3 with a hint, never a bug report.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, docker.errors.DockerException) and _is_connection(current):
            return lost_connection()
        if isinstance(current, CUT_ERRORS):
            return lost_connection()
        current = current.__cause__ or current.__context__
    return None


# For connection_problem, which sees exceptions from anywhere: not every OSError (a file that
# cannot be written, or a closed stdout's BrokenPipeError, is no lost daemon), only the ones a
# cut connection raises.
CUT_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    http.client.HTTPException,
    ConnectionResetError,
    ConnectionRefusedError,
    ConnectionAbortedError,
)


def _is_connection(exc: Exception) -> bool:
    text = str(exc)
    return any(word in text for word in ("Connection", "connection", "socket", "Errno"))


def labels_of(obj: Any) -> dict[str, str]:
    """Labels of a container or network, whether listed sparsely or inspected."""
    attrs = obj.attrs
    return attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}
