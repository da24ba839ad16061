"""One place per extension: a probe kind and a backend from another package, found by name.

A toy package is installed here the way pip installs one: a package folder and
its dist-info with entry points, on sys.path. It brings a probe kind
(`sysctl`: reads a kernel setting on a node, no traffic) and a backend (the
table of tests/unit/test_seam.py), and nothing of portlab is edited: the lab
format accepts the kind, `check` runs it, and $PORTLAB_BACKEND picks the
backend. A plugin that fails is named and never stops what does not use it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from portlab import backend, core, probes
from portlab.backend.base import ExecResult
from portlab.errors import LabError, RuntimeProblem, UsageError
from portlab.model import probekinds
from portlab.model.context import Binding
from portlab.probes.base import Outcome
from portlab.probes.runner import run_checks
from tests.unit.fakes import FakeNodes
from tests.unit.labfiles import minimal, parse_data

SYSCTL = '''
from portlab.model.probekinds import KindSchema
from portlab.probes.base import CannotObserve, Outcome, ProbeKind, ProbeResult, ProbeRun


def run(job: ProbeRun) -> ProbeResult:
    key = job.probe.options["key"]
    path = "/proc/sys/" + key.replace(".", "/")
    done = job.nodes.exec(job.source, ["cat", path])
    if done.exit_code != 0:
        raise CannotObserve(f"cannot read {path}: {done.stderr.strip()}")
    value = done.stdout.strip()
    return ProbeResult(Outcome.of(value == job.probe.expect["value"]), f"read {key}",
                       job.source, path, f"{key} = {value}")


KIND = ProbeKind(KindSchema("sysctl", "A kernel setting of the node (no traffic)",
                            options={"key": str}, expects={"value": str},
                            needs_target=False, needs_port=False), run)
'''

CRASHY = '''
from portlab.model.probekinds import KindSchema
from portlab.probes.base import ProbeKind


def run(r):
    raise ZeroDivisionError("the kind's own bug")


KIND = ProbeKind(KindSchema("crashy", "always fails in itself", needs_target=False,
                            needs_port=False), run)
'''

TABLE = '''
def make():
    from tests.unit.test_seam import forwarding_table
    return forwarding_table()
'''

ENTRY_POINTS = '''
[portlab.probe_kinds]
sysctl = toyplug.sysctl:KIND
crashy = toyplug.crashy:KIND
gone = toyplug.missing:KIND
tcp = toyplug.sysctl:KIND

[portlab.backends]
table = toyplug.table:make
gone = toyplug.missing:make
'''


@pytest.fixture
def toyplug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy package, installed on sys.path with its entry points."""
    site = tmp_path / "site"
    package = site / "toyplug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, text in (("sysctl", SYSCTL), ("crashy", CRASHY), ("table", TABLE)):
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    info = site / "toyplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PORTLAB_BACKEND", raising=False)
    probekinds.forget()
    backend.forget()
    yield site
    probekinds.forget()
    backend.forget()


def sysctl_lab(**probe: object):  # type: ignore[no-untyped-def]
    data = minimal()
    data["checks"] = [{"id": "routes", "title": "a forwards packets",
                       "probes": [{"kind": "sysctl", "from": "a", **probe}]}]
    return parse_data(data)


def on_a(value: str, code: int = 0) -> FakeNodes:
    return FakeNodes(lambda node, argv: ExecResult(code, value + "\n",
                                                   "" if code == 0 else "no such file"))


def test_a_probe_kind_from_another_package_is_validated_and_run(toyplug: Path) -> None:
    assert "sysctl" in probekinds.kinds()
    lab = sysctl_lab(key="net.ipv4.ip_forward", expect={"value": "1"})
    binding = Binding.preview(lab)
    assert run_checks(lab, binding, on_a("1")).outcome is Outcome.PASS
    failed = run_checks(lab, binding, on_a("0"))
    assert failed.outcome is Outcome.FAIL
    assert failed.results[0].probes[0].got == "net.ipv4.ip_forward = 0"
    cannot = run_checks(lab, binding, on_a("", code=1))
    assert cannot.outcome is Outcome.ERROR and "no such file" in cannot.results[0].probes[0].why
    with pytest.raises(LabError, match="path: unknown key"):  # its schema, key by key
        sysctl_lab(key="net.ipv4.ip_forward", path="/", expect={"value": "1"})
    with pytest.raises(LabError, match="value"):
        sysctl_lab(key="net.ipv4.ip_forward", expect={"valu": "1"})


def test_a_kind_that_fails_in_itself_is_an_error_not_a_crash(toyplug: Path) -> None:
    data = minimal()
    data["checks"] = [{"id": "x", "title": "x", "probes": [{"kind": "crashy", "from": "a"}]}]
    lab = parse_data(data)
    report = run_checks(lab, Binding.preview(lab), on_a("1"))
    assert report.outcome is Outcome.ERROR
    assert "ZeroDivisionError" in report.results[0].probes[0].why


def test_a_plugin_that_does_not_load_is_named_and_stops_nothing_else(toyplug: Path) -> None:
    assert "gone" not in probekinds.kinds()
    assert "ModuleNotFoundError" in probekinds.broken()["gone"]
    assert "already there" in probekinds.broken()["tcp"]  # a built-in is never replaced
    assert probes.kind("tcp").schema.kind == "tcp"
    core.get_lab("forwarding")  # the shipped labs still load
    with pytest.raises(LabError, match="A package offers it, but .*did not load"):
        parse_data({**minimal(), "checks": [
            {"id": "x", "title": "x", "probes": [{"kind": "gone", "from": "a"}]}]})


def test_a_backend_from_another_package_runs_a_whole_check(
        toyplug: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend.names() == ["docker", "gone", "table"]
    monkeypatch.setenv("PORTLAB_BACKEND", "table")
    assert backend.get().name == "table"
    report = core.check("forwarding")
    assert report.outcome is Outcome.PASS
    backend.forget()
    monkeypatch.setenv("PORTLAB_BACKEND", "gone")
    with pytest.raises(RuntimeProblem, match="backend 'gone' .* did not load"):
        backend.get()
    backend.forget()
    monkeypatch.setenv("PORTLAB_BACKEND", "nope")
    with pytest.raises(UsageError, match="Backends: docker, gone, table"):
        backend.get()


def test_the_node_image_ships_what_the_kinds_run_on_nodes() -> None:
    from portlab.backend.docker import nodelayer

    for name in probekinds.kinds():
        assert set(probes.kind(name).node) <= set(nodelayer.tools())
        for tool in probes.kind(name).node:
            assert (Path(nodelayer.__file__).parents[2] / "node" / tool).is_file()
