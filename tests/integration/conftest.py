"""Fixtures for integration tests on real containers (marker `docker`).

Labs are started two ways, both for real: through portlab's own `up` (the
CLI tests), and as plain Compose projects through pytest-docker from the file
`portlab render` produces (the lab tests), which also proves the rendered
file stands on its own with whichever Compose is installed.

If Docker or Compose is missing these tests fail with the reason; they are
never skipped. Deselect them with `-m "not docker"` on a machine without Docker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_docker.plugin import get_docker_services

from portlab import runtime
from portlab.backend.docker import client as docker_api
from portlab.backend.docker import compose, create, image, models
from portlab.errors import PortlabError
from portlab.model.types import Lab
from portlab.progress import Quiet
from portlab.views.progress import TerminalProgress
from tests.integration.helpers import Running
from tests.integration.labpool import LabPool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.docker)
    # test_labs.py reads what the lab pool (labpool.py) did meanwhile: last of the
    # integration tests, so that the pool has their whole time
    labs = [i for i in items if Path(str(i.fspath)) == here / "test_labs.py"]
    if labs:
        rest = [i for i in items if i not in labs]
        after = [k for k, i in enumerate(rest) if here in Path(str(i.fspath)).parents]
        at = after[-1] + 1 if after else len(rest)
        items[:] = rest[:at] + labs + rest[at:]


@pytest.fixture(scope="session", autouse=True)
def lab_pool(request: pytest.FixtureRequest) -> Iterator[LabPool | None]:
    """The cases of every lab, started at the first integration test when test_labs.py is
    part of the run (labpool.py)."""
    here = Path(__file__).parent
    if not any(Path(str(i.fspath)) == here / "test_labs.py" for i in request.session.items):
        yield None
        return
    request.getfixturevalue("node_image")
    pool = LabPool()
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Docker and Compose are there, or every docker test fails saying which is missing."""
    docker_api.client()
    compose.detect()


@pytest.fixture(scope="session")
def node_image(docker_ready: None) -> str:
    """The node image, built if missing (offline with mmdebstrap where no registry answers)."""
    return image.ensure(TerminalProgress(sys.stderr))


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers_in_scope() -> Iterator[None]:
    """After the session nothing of its scope may remain: leftovers are an error, then removed."""
    yield
    try:
        left = runtime.instances()
    except Exception:
        return
    if left:
        runtime.down_all(Quiet())
        raise AssertionError(f"tests left lab instances behind: {sorted(left)}")


StartLab = Callable[..., runtime.Instance]


@pytest.fixture
def start_lab(node_image: str, tmp_path: Path) -> Iterator[StartLab]:
    """Start a lab as a plain Compose project via pytest-docker; removed after the test."""
    stack = []

    def start(lab: Lab, instance: str) -> runtime.Instance:
        for attempt in range(3):
            plan = runtime.plan(lab, instance, node_image)
            path = tmp_path / f"{instance}.compose.yaml"
            path.write_text(models.compose(plan))
            services = get_docker_services(
                compose.detect().command, str(path), compose.project_name(instance),
                ["up -d"], ["down -v --remove-orphans"])
            try:
                services.__enter__()
            except Exception as exc:
                try:  # what Compose made before it failed (a network): nothing is left
                    runtime.down(instance, Quiet())
                except PortlabError:
                    pass
                # Another lab (the lab pool runs meanwhile) took a subnet between the plan
                # and the start: as `portlab up` does, plan again and start afresh
                if "overlaps" in str(exc) and attempt < 2:
                    continue
                raise
            break
        stack.append((services, instance))
        inst = runtime.instances()[instance]
        runtime.wait_ready(inst, Quiet(), lab=lab)
        create.wait_seal(plan)  # Compose starts it once the nodes run: its end, exit 0
        return inst

    yield start
    for services, instance in reversed(stack):
        try:
            services.__exit__(None, None, None)
        finally:
            runtime.down(instance, Quiet())


@pytest.fixture
def started() -> Iterator[Callable[..., Running]]:
    """Start `portlab ARGS` in the background (helpers.Running); whatever still runs at the
    end of the test is killed."""
    runs: list[Running] = []

    def start(*args: str, env: dict[str, str] | None = None, **kw: Any) -> Running:
        runs.append(Running(*args, env=env, **kw))
        return runs[-1]

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
        run.finish()
