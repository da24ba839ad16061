"""`portlab grade` on real containers, as course staff and CI run it.

* Each shipped lab's reference solution earns full marks on two students' variants (and
  the same again when graded twice); its JUnit file validates against the published schema.
* An empty submission (the starter files, untouched) earns zero, with feedback on every check.
* Each wrong solution of the forwarding and firewall labs, handed in as a submission, earns
  exactly the points of the checks it still passes (a class graded at once: the batch).
* A solution copied from another student's variant fails.
* Hostile submissions (one that hangs, runs `kill -9 -1`, forks without end, floods the
  disk, or goes for the Docker host) each get a clear failing grade within their limit,
  beside a good one graded at the same time, which is not disturbed; nothing is left.
* The starter repository from `classroom init` passes its own workflow's grading command,
  run here by hand with the reference solution dropped in, and the payload it hands
  Classroom decodes to full marks.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from portlab import core
from tests.formats import classroom
from tests.integration.helpers import portlab
from tests.unit.test_grading import XSD

LABS = ["forwarding", "firewall", "vpn"]
VENV_BIN = Path(sys.executable).parent


def grade(lab: str, folder: Path, student: str, *extra: str,
          env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    out = folder.parent / f"{folder.name}.grade.json"
    proc = portlab("grade", lab, "--submission", str(folder), "--student", student, "--json",
                   str(out), *extra, env=env)
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    return proc.returncode, json.loads(out.read_text())


def solution(lab: str, folder: Path, student: str, *extra: str) -> Path:
    portlab("classroom", "solution", lab, str(folder), "--student", student, *extra,
            check_rc=0)
    return folder


def stable(result: dict[str, Any]) -> dict[str, Any]:
    """What must be the same when a submission is graded again: the variant, the verdicts and
    points (not timings, nor the ephemeral ports and latencies the probes saw)."""
    keep = ("lab", "student", "variant", "status", "score", "max_score", "pass_mark", "message")
    return {**{k: result[k] for k in keep},
            "files": [(f["file"], f["exit_code"], f["output"]) for f in result["files"]],
            "checks": [(c["id"], c["status"], c["points"]) for c in result["checks"]]}


@pytest.mark.parametrize("lab", LABS)
def test_the_reference_solution_earns_full_marks_on_two_variants(
        lab: str, tmp_path: Path, node_image: str) -> None:
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(XSD)))
    variants = []
    for student in ("alice", "bob"):
        folder = solution(lab, tmp_path / student, student)
        junit = tmp_path / f"{student}.xml"
        code, result = grade(lab, folder, student, "--junit", str(junit))
        assert (code, result["status"], result["score"]) == (0, "passed", result["max_score"]), \
            [(c["id"], c["message"]) for c in result["checks"]]
        assert schema.validate(etree.parse(str(junit))), schema.error_log
        variants.append(result["variant"])
    assert variants[0] != variants[1]
    if lab == "forwarding":  # the same submission graded again: the same grade
        _, again = grade(lab, tmp_path / "alice", "alice")
        _, first = grade(lab, tmp_path / "alice", "alice")
        assert stable(again) == stable(first)


def test_an_empty_submission_earns_zero_with_feedback_on_every_check(
        tmp_path: Path, node_image: str) -> None:
    portlab("classroom", "init", "forwarding", str(tmp_path / "repo"), check_rc=0)
    code, result = grade("forwarding", tmp_path / "repo" / "submission", "alice")
    assert code == 1 and result["score"] == 0 and result["status"] == "failed"
    assert result["message"] == "the submission is empty: its files hold nothing but comments"
    for check in result["checks"]:
        assert check["points"] == 0 and check["status"] in ("pass", "fail")
        assert check["hint"] if check["status"] == "fail" else "earns nothing" in check["message"]


@pytest.mark.parametrize("lab", ["forwarding", "firewall"])
def test_wrong_solutions_earn_exactly_the_points_of_the_checks_they_still_pass(
        lab: str, tmp_path: Path, node_image: str) -> None:
    """Each wrong solution, as a student of its own in one class graded at once."""
    spec = core.get_lab(lab)
    root = tmp_path / "class"
    root.mkdir()
    for wrong in spec.wrong_solutions:
        solution(lab, root / wrong.name, wrong.name, "--wrong", wrong.name)
    out = tmp_path / "grades"
    proc = portlab("grade", lab, "--submissions", str(root), "--csv", str(tmp_path / "g.csv"),
                   "--json", str(out), "--parallel", "4")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "g.csv").open())}
    for wrong in spec.wrong_solutions:
        expected = sum(p for cid, p in spec.points.items() if cid not in wrong.fails)
        result = json.loads((out / f"{wrong.name}.json").read_text())
        assert result["score"] == expected, (wrong.name, [(c["id"], c["status"])
                                                          for c in result["checks"]])
        assert [c["id"] for c in result["checks"] if c["status"] == "fail"] == list(wrong.fails)
        assert rows[wrong.name]["score"] == str(expected)
    assert f"Graded {len(spec.wrong_solutions)} submissions" in proc.stdout


def test_a_solution_copied_from_another_variant_fails(tmp_path: Path, node_image: str) -> None:
    folder = solution("forwarding", tmp_path / "alice", "alice")
    code, result = grade("forwarding", folder, "bob")
    assert code == 1 and result["status"] == "failed"
    assert {c["id"] for c in result["checks"] if c["status"] == "fail"} >= {"reach"}


LIMIT = 10  # seconds for router.sh in the tests' copy of the forwarding lab
TIMED_OUT = f"router.sh did not finish within {LIMIT} s on router"
HOSTILE = {
    "hangs": ("sleep 1000", TIMED_OUT),
    "kills-everything": ("kill -9 -1", "the submission stopped node router"),
    "forks-without-end": ("f() { f | f & }; f",
                          "the submission started processes without end on router"),
    "floods-the-disk": ("i=0; while true; do i=$((i+1)); head -c 50000000 /dev/zero > /f$i; "
                        "done", "the submission wrote more than 256 MiB to the disk of router"),
}


def _forwarding_with_limit(root: Path, seconds: int) -> dict[str, str]:
    """The forwarding lab under `root`, with a time limit of `seconds` for router.sh."""
    folder = root / "labs" / "forwarding"
    folder.mkdir(parents=True)
    text = (Path(core.get_lab("forwarding").file)).read_text()
    assert "    node: router\n    comment:" in text
    folder.joinpath("lab.yaml").write_text(text.replace(
        "    node: router\n    comment:",
        f"    node: router\n    timeout: {seconds}\n    comment:"))
    return {"PORTLAB_LABS_PATH": str(root / "labs")}


@pytest.fixture
def quick_lab(tmp_path: Path) -> dict[str, str]:
    """The forwarding lab, with a time limit of LIMIT seconds for router.sh."""
    return _forwarding_with_limit(tmp_path, LIMIT)


# Time enough for the disk cap to stop a flood first, however slowly this machine's disk fills
# (on one, 256 MiB through fuse-overlayfs took longer than LIMIT).
FLOOD_LIMIT = 120


def test_hostile_submissions_fail_within_their_limits_and_disturb_nobody(
        tmp_path: Path, quick_lab: dict[str, str], node_image: str) -> None:
    root = tmp_path / "class"
    for student, (script, _) in HOSTILE.items():
        (root / student).mkdir(parents=True)
        (root / student / "router.sh").write_text(script + "\n")
    (root / "goes-for-the-host").mkdir()
    (root / "goes-for-the-host" / "router.sh").write_text(
        "ping -c1 -W1 172.17.0.1; ip route replace default via 198.18.0.254 || true\n"
        "curl -m 2 http://172.17.0.1/ || true\n")
    env = {**os.environ, **quick_lab}
    portlab("classroom", "solution", "forwarding", str(root / "good"), "--student", "good",
            env=env, check_rc=0)
    out = tmp_path / "grades"
    proc = portlab("grade", "forwarding", "--submissions", str(root), "--json", str(out),
                   "--parallel", "6", env=quick_lab)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    good = results["good"]
    assert (good["status"], good["score"]) == ("passed", good["max_score"]), good["checks"]
    for student, (_, words) in HOSTILE.items():
        result = results[student]
        assert result["status"] == "failed" and result["score"] == 0, (student, result)
        said = result["message"]
        if student == "floods-the-disk":  # six grades at once: its time may run out first
            assert said.startswith((words, TIMED_OUT)), said
        else:
            assert said.startswith(words), (student, said)
        # the message above proves the limit stopped it; this bound only guards against a grade
        # that never ends (six grades at once on two cores can take minutes), not a timing check
        assert result["seconds"] < LIMIT + 300, (student, result["seconds"])
    host = results["goes-for-the-host"]
    assert host["status"] == "failed" and host["score"] < host["pass_mark"]
    # nothing left: no container, network, grader or Compose process of any grade
    for student in results:
        slug = student[:20]
        assert not [c for c in labelled_all() if f"grade-{slug}" in c], student
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "grade-" not in ps


def test_a_disk_flood_is_stopped_at_its_cap(tmp_path: Path, node_image: str) -> None:
    """Alone, well within its time: what it writes to the node's disk stops it."""
    folder = tmp_path / "flood"
    folder.mkdir()
    (folder / "router.sh").write_text(HOSTILE["floods-the-disk"][0] + "\n")
    env = _forwarding_with_limit(tmp_path, FLOOD_LIMIT)
    code, result = grade("forwarding", folder, "flooder", env=env)
    assert code == 1 and result["score"] == 0
    assert result["message"].startswith(HOSTILE["floods-the-disk"][1]), result["message"]
    assert not [x for x in labelled_all() if "grade-flooder" in x]


def labelled_all() -> list[str]:
    from portlab.backend.docker import client as docker_api

    c = docker_api.client()
    filters = docker_api.scope_filter()
    return [str(x.attrs.get("Names") or x.id) for x in
            c.containers.list(all=True, sparse=True, filters=filters)] + \
        [n.name for n in c.networks.list(filters=filters)]


def test_the_starter_repository_passes_its_own_workflow(tmp_path: Path,
                                                        node_image: str) -> None:
    repo = tmp_path / "repo"
    portlab("classroom", "init", "vpn", str(repo), "--salt", "cs101", check_rc=0)
    shutil.rmtree(repo / "submission")
    portlab("classroom", "solution", "vpn", str(repo / "submission"), "--student", "octocat",
            "--salt", "cs101", check_rc=0)
    workflow = yaml.safe_load((repo / ".github" / "workflows" / "classroom.yml").read_text())
    job = workflow["jobs"]["run-autograding-tests"]
    step = next(s for s in job["steps"] if s.get("id") == "portlab")
    output, summary = tmp_path / "github-output", tmp_path / "step-summary"
    # the instructor re-ran it: the student is still the repository's, <prefix>-<login>
    env = {**os.environ, **{k: str(v) for k, v in job["env"].items()},
           "GITHUB_ACTOR": "the-instructor", "GITHUB_REPOSITORY": "cs101-org/vpn-OctoCat",
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PORTLAB_STUDENT", None)
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "the student is octocat, from the repository's name, vpn-OctoCat" in proc.stderr
    full = core.get_lab("vpn").max_points
    assert f"Score: {full}/{full}" in proc.stdout
    said = classroom.report(*classroom.reporter_env(workflow,
                                                    classroom.outputs(output.read_text())))
    assert said.posted == (full, full) and said.step == "passed"
    assert sum(s for s, _ in said.log.values()) == full  # the log says what Classroom does
    assert f"Score {full}/{full}" in summary.read_text()
    assert (repo / "portlab-junit.xml").exists() and (repo / "portlab-grade.json").exists()
    assert not [x for x in labelled_all() if "grade-octocat" in x]


FORGER = r"""# Tries to grade itself: fake probe answers, a fake score, a fake Classroom payload.
cat > /usr/local/bin/portlab-probe <<'END'
#!/bin/sh
echo '{"state": "open", "kind": "tcp", "banner": "SSH-2.0-OpenSSH", "sockets": []}'
END
chmod +x /usr/local/bin/portlab-probe
echo "Score: 10/10 (pass mark 8): passed."
echo "result=eyJzdGF0dXMiOiJwYXNzIn0="
"""


def test_nothing_a_submission_prints_or_leaves_on_its_node_changes_the_grade(
        tmp_path: Path, node_image: str) -> None:
    """A firewall submission that blocks nothing but replaces the probe tool on its server
    (where two checks probe from) and prints a passing score: graded as what it does."""
    folder = tmp_path / "forger"
    folder.mkdir()
    (folder / "server.sh").write_text(FORGER)
    code, result = grade("firewall", folder, "mallory", "--classroom")
    lab = core.get_lab("firewall")
    untouched = sum(p for cid, p in lab.points.items() if cid not in lab.untouched_fails)
    assert code == 1 and result["status"] == "failed"
    assert result["score"] == untouched  # exactly what an untouched server earns
    assert [c["id"] for c in result["checks"] if c["status"] == "fail"] == \
        list(lab.untouched_fails)
    assert "Score: 10/10" in result["files"][0]["output"]  # it said so; nobody listened


def test_an_interrupted_grade_removes_everything_it_started(
        tmp_path: Path, quick_lab: dict[str, str], started: Any, node_image: str) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "router.sh").write_text("sleep 60\n")
    run = started("grade", "forwarding", "--submission", str(folder), "--student", "carol",
                  env=quick_lab)
    run.wait_for("the submission to run", lambda: run.said("applying 1 submitted file"))
    code = run.stop(signal.SIGINT)
    assert code == 130 and "interrupted" in run.stderr, (code, run.stderr)
    assert not [x for x in labelled_all() if "grade-carol" in x]


def test_up_of_a_student_is_the_lab_they_are_graded_on(tmp_path: Path, node_image: str) -> None:
    lab, variant = core.variant("forwarding", "dave")
    portlab("up", "forwarding", "--student", "dave", "--instance", "t-dave", check_rc=0)
    try:
        status = json.loads(portlab("status", "--json", "--instance", "t-dave",
                                    check_rc=0).stdout)["instances"][0]
        assert status["student"] == "dave"
        assert {n["name"]: n["subnet"] for n in status["networks"]} == \
            {k: str(v) for k, v in variant.subnets.items()}
        assert status["params"]["game_port"] == variant.params["game_port"]
        # the reference solution of the variant, applied by hand, passes on it
        folder = solution("forwarding", tmp_path / "dave", "dave")
        script = (folder / "router.sh").read_text()
        portlab("exec", "router", "--instance", "t-dave", "--", "sh", "-c", script, check_rc=0)
        assert portlab("check", "--instance", "t-dave").returncode == 0
    finally:
        portlab("down", "--instance", "t-dave", check_rc=0)
