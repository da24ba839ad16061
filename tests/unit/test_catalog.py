"""Finding labs: one lab that does not load never hides the others (no Docker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portlab.model import catalog
from tests.unit.labfiles import minimal, text_of

ROOT = Path(__file__).resolve().parents[2]


def labs_folder(root: Path) -> Path:
    good = minimal()
    good["name"] = "mine"
    (root / "mine").mkdir()
    (root / "mine" / "lab.yaml").write_text(text_of(good))
    broken = minimal()
    broken["name"] = "half-done"
    broken["nodes"]["b"]["interfaces"]["wan"]["network"] = "nowhere"
    (root / "half-done").mkdir()
    (root / "half-done" / "lab.yaml").write_text(text_of(broken))
    (root / "notes").mkdir()  # a folder without lab.yaml is not a lab
    return root


def run(*args: str, labs: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTLAB_LABS_PATH": str(labs),
           "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def test_scan_keeps_the_good_labs_and_names_the_broken_one(tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("PORTLAB_LABS_PATH", str(labs_folder(tmp_path)))
    found = catalog.scan()
    assert {"mine", "forwarding", "vpn", "firewall"} <= {lab.name for lab in found.labs}
    [broken] = found.broken
    assert broken.name == "half-done" and broken.file.endswith("half-done/lab.yaml")
    assert "no network called 'nowhere'" in str(broken.error)


def test_list_shows_the_others_and_says_which_one_does_not_load(tmp_path: Path) -> None:
    labs = labs_folder(tmp_path)
    proc = run("list", labs=labs)
    assert proc.returncode == 0, proc.stderr
    assert "mine " in proc.stdout and "forwarding " in proc.stdout
    assert "half-done" not in proc.stdout
    assert proc.stderr.startswith("portlab: 1 lab does not load, so it is not listed:\n")
    text = (labs / "half-done" / "lab.yaml").read_text()
    line = text[:text.index("nowhere")].count("\n") + 1
    assert (f"  half-done: {labs}/half-done/lab.yaml:{line}: nodes.b.interfaces.wan.network: no "
            "network called 'nowhere'. Networks: net") in proc.stderr
    shown = run("show", "mine", labs=labs)
    assert shown.returncode == 0 and "A tiny lab" in shown.stdout
    bad = run("show", "half-done", labs=labs)
    assert bad.returncode == 2 and "no network called 'nowhere'" in bad.stderr
