"""The package as a user gets it: `python -m build` makes an sdist and a wheel that `twine
check` passes; the wheel, installed into a fresh virtualenv far from this checkout, runs
`portlab list`, `show` and one real grade (so it carries the labs, the node tools and the
templates), and a starter made with the defaults installs exactly it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portlab import DISTRIBUTION, __version__, requirement

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.docker


def run(argv: list[str], cwd: Path, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**clean, **(env or {})}, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (argv, proc.returncode, proc.stdout[-3000:],
                                  proc.stderr[-3000:])
    return proc


def test_the_wheel_installs_and_grades(tmp_path: Path, node_image: str) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        cwd=tmp_path)
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    assert wheel.name == f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"
    assert sdist.name == f"{DISTRIBUTION.replace('-', '_')}-{__version__}.tar.gz"
    said = run([str(BIN / "twine"), "check", "--strict", str(wheel), str(sdist)],
               cwd=tmp_path).stdout
    assert said.count("PASSED") == 2, said

    venv = tmp_path / "fresh"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         str(wheel)], cwd=tmp_path)
    home = tmp_path / "home"  # nowhere near this checkout: what runs is the wheel's
    home.mkdir()
    cli = str(venv / "bin" / "portlab")
    where = run([str(venv / "bin" / "python"), "-c",
                 "import portlab, sys; print(portlab.__file__)"], cwd=home).stdout
    assert where.startswith(str(venv)), where
    assert run([cli, "--version"], cwd=home).stdout.strip() == f"portlab, version {__version__}"
    listed = run([cli, "list"], cwd=home).stdout
    assert all(lab in listed for lab in ("forwarding", "vpn", "ports", "ssh-tunnel"))
    assert "25565" in run([cli, "show", "forwarding"], cwd=home).stdout
    assert run([cli, "image", "tag"], cwd=home).stdout.strip() == node_image

    run([cli, "classroom", "solution", "forwarding", str(home / "sub"), "--student", "wheel"],
        cwd=home)
    graded = subprocess.run([cli, "grade", "forwarding", "--submission", str(home / "sub"),
                             "--student", "wheel", "--json", str(home / "grade.json")],
                            cwd=home, capture_output=True, text=True, timeout=600,
                            stdin=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert graded.returncode == 0, (graded.stdout, graded.stderr)
    grade = json.loads((home / "grade.json").read_text())
    assert grade["status"] == "passed" and grade["score"] == grade["max_score"]

    run([cli, "classroom", "init", "forwarding", str(home / "starter")], cwd=home)
    workflow = (home / "starter" / ".github" / "workflows" / "classroom.yml").read_text()
    assert f'PORTLAB_INSTALL: "{requirement()}"' in workflow
