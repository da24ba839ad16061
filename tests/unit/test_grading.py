"""Grading without Docker: lab declarations, variants, submission folders, every output format.

The grades themselves are proved on real containers (tests/integration/test_grading.py);
here: what a lab declares loads and is checked, variants are deterministic and differ,
unusable submissions are refused naming the file (exit 2) before anything starts, and
JSON, JUnit (validated against the published schema), Classroom's payload, Gradescope's
results and the CSV say what they should, for passing, failing, errored and stopped grades.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from portlab import core
from portlab.errors import UsageError
from portlab.grading import submission as sub
from portlab.grading.apply import is_empty
from portlab.grading.result import CheckGrade, FileRun, Grade, Status
from portlab.model import allocate
from portlab.model.types import Range
from portlab.model.variant import course_salt, derive, find_student, student_id
from portlab.probes.base import Outcome, ProbeResult
from portlab.views import grade as view
from portlab.views import starter

ROOT = Path(__file__).resolve().parents[2]
XSD = ROOT / "tests" / "schemas" / "junit-10.xsd"
LABS = ("forwarding", "firewall", "vpn")


# --- what the shipped labs declare --------------------------------------------------------------


@pytest.mark.parametrize("name", LABS)
def test_shipped_labs_can_be_graded(name: str) -> None:
    lab = core.get_lab(name)
    assert lab.submission and lab.vary
    assert set(lab.points) == {c.id for c in lab.checks}
    assert 0 < lab.pass_mark <= lab.max_points
    for entry in lab.submission:
        assert entry.solution.strip(), f"{entry.file} has a reference solution"
        assert entry.comment.strip(), f"{entry.file} says what goes in it"


@pytest.mark.parametrize("name", LABS)
def test_variants_are_the_same_every_time_and_differ_between_students(name: str) -> None:
    lab = core.get_lab(name)
    alice = derive(lab, "alice")
    assert derive(lab, "alice") == alice
    others = [derive(lab, s) for s in ("bob", "carol", "dave", "erin")]
    assert all(o != alice for o in others)
    assert derive(lab, "alice", "cs101") != alice  # a course salt makes them its own
    for variant in [alice, *others]:
        for param, rule in lab.vary.params.items():
            value = variant.params[param]
            assert (rule.low <= value <= rule.high) if isinstance(rule, Range) else value in rule
        nets = list(variant.subnets.values())
        assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
        for net, within in lab.vary.networks.items():
            assert variant.subnets[net].subnet_of(within)
            assert not any(variant.subnets[net].overlaps(p)
                           for p in allocate.DOCKER_DEFAULT_POOLS)


def test_a_variant_changes_what_a_copied_solution_relies_on() -> None:
    """A solution names a port and an address: each student's differ."""
    a, b = core.variant("forwarding", "alice"), core.variant("forwarding", "bob")
    assert a[1].params["game_port"] != b[1].params["game_port"]
    assert a[1].subnets["home"] != b[1].subnets["home"]
    va, vb = core.variant("vpn", "alice")[1], core.variant("vpn", "bob")[1]
    assert va.key_seed != vb.key_seed  # the gateway's key differs too


def test_the_student_comes_from_ci_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "PORTLAB_STUDENT", "PORTLAB_ASSIGNMENT",
                "GITHUB_REPOSITORY", "CI_PROJECT_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError) as info:
        student_id()
    assert "which student?" in str(info.value)
    # last: who started the run
    monkeypatch.setenv("GITLAB_USER_LOGIN", "gitlab-user")
    assert student_id() == "gitlab-user"
    monkeypatch.setenv("GITHUB_ACTOR", "Octo-Cat")
    assert student_id() == "octo-cat" and student_id("Given") == "given"
    # before it: the Classroom repository's name, `<assignment-prefix>-<login>`, even when
    # the instructor pushed
    monkeypatch.setenv("GITHUB_ACTOR", "the-instructor")
    monkeypatch.setenv("GITHUB_REPOSITORY", "cs101-org/port-forwarding-Alice-B")
    monkeypatch.setenv("PORTLAB_ASSIGNMENT", "port-forwarding")
    assert find_student() == ("alice-b", "the repository's name, port-forwarding-Alice-B")
    monkeypatch.setenv("GITHUB_REPOSITORY", "cs101-org/port-forwarding")  # the template itself
    student, where = find_student()
    assert student == "the-instructor" and "does not start with 'port-forwarding-'" in where
    monkeypatch.delenv("GITHUB_REPOSITORY")
    monkeypatch.setenv("CI_PROJECT_NAME", "port-forwarding-bob")  # GitLab
    assert student_id() == "bob"
    # first: set by the course
    monkeypatch.setenv("PORTLAB_STUDENT", "Zed")
    assert find_student() == ("zed", "$PORTLAB_STUDENT")
    for bad in ("", "-x", "a b", "x" * 101, "../etc"):
        with pytest.raises(UsageError):
            student_id(bad)
    monkeypatch.setenv("PORTLAB_COURSE_SALT", "s1")
    assert course_salt() == "s1" and course_salt("s2") == "s2"


def test_show_of_a_student_gives_their_variant() -> None:
    lab, var = core.variant("vpn", "alice")
    shown = core.show("vpn", student="alice")
    assert "the variant of student 'alice'" in shown
    assert f"UDP port {var.params['wg_port']}" in shown
    assert str(var.subnets["office"]) in shown
    assert "shown once the lab is up" not in shown  # the variant's gateway key is its own
    assert core.show("vpn", student="alice") == shown


# --- submission folders ---------------------------------------------------------------------------


def folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "sub"
    root.mkdir(parents=True)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def refused(tmp_path: Path, lab: str, files: dict[str, bytes]) -> str:
    with pytest.raises(sub.SubmissionError) as info:
        sub.read(core.get_lab(lab), folder(tmp_path, files))
    return str(info.value)


def test_a_good_submission_is_read_in_the_labs_order(tmp_path: Path) -> None:
    got = sub.read(core.get_lab("vpn"), folder(tmp_path, {
        "laptop/wg0.conf": b"[Interface]\n", "vpn-gw.sh": b"wg set wg0\n",
        ".gitkeep": b"", ".git/config": b"x"}))
    assert [s.entry.file for s in got] == ["vpn-gw.sh", "laptop/wg0.conf"]


def test_unusable_submissions_are_refused_naming_the_file(tmp_path: Path) -> None:
    assert "router.sh (in" in refused(tmp_path / "1", "forwarding", {}) and "is missing" in \
        refused(tmp_path / "2", "forwarding", {})
    assert "does not take: notes.txt" in refused(tmp_path / "3", "forwarding",
                                                 {"router.sh": b"", "notes.txt": b""})
    assert "router.sh (in" in refused(tmp_path / "4", "forwarding", {"router.sh": b"a\0b"})
    assert "is not UTF-8 text" in refused(tmp_path / "5", "forwarding",
                                          {"router.sh": b"\xff\xfe"})
    assert "at most" in refused(tmp_path / "6", "forwarding",
                                {"router.sh": b"#" * (sub.MAX_BYTES + 1)})
    linked = folder(tmp_path / "7", {"real.sh": b"x"})
    (linked / "router.sh").symlink_to(linked / "real.sh")
    with pytest.raises(sub.SubmissionError):
        sub.read(core.get_lab("forwarding"), linked)


def test_starter_files_are_empty_submissions() -> None:
    lab = core.get_lab("vpn")
    for entry in lab.submission:
        text = starter.starter_file(lab, entry)
        assert is_empty(text.encode()) and entry.comment.split()[0] in text
    assert not is_empty(b"# set it up\niptables -A INPUT -j DROP\n")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portlab", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "DOCKER_HOST": "unix:///nonexistent/docker.sock"})


def test_grade_exit_codes_without_docker(tmp_path: Path) -> None:
    missing = run("grade", "forwarding", "--submission", str(tmp_path / "none"), "--student",
                  "alice")
    assert missing.returncode == 2 and "does not exist or is not a folder" in missing.stderr
    sub_dir = folder(tmp_path, {"router.sh": b"true\n", "extra.txt": b""})
    extra = run("grade", "forwarding", "--submission", str(sub_dir), "--student", "alice")
    assert extra.returncode == 2 and "does not take: extra.txt" in extra.stderr
    (sub_dir / "extra.txt").unlink()
    no_docker = run("grade", "forwarding", "--submission", str(sub_dir), "--student", "alice")
    assert no_docker.returncode == 3 and "Docker is not running" in no_docker.stderr
    assert "Traceback" not in no_docker.stderr
    neither = run("grade", "forwarding")
    assert neither.returncode == 2 and "give --submission DIR" in neither.stderr


# --- the outputs ----------------------------------------------------------------------------------


def probe(outcome: Outcome, why: str = "") -> ProbeResult:
    return ProbeResult(outcome, "Minecraft status ping", "friend (198.18.0.10)",
                       "router.wan = 198.18.0.1:23456", "the connection was refused at once",
                       why, fix="start the lab afresh" if outcome is Outcome.ERROR else "")


def sample(status: Status = Status.FAILED) -> Grade:
    variant = derive(core.get_lab("forwarding"), "alice")
    checks = [
        CheckGrade("reach", "Your friend's game lists your server", Outcome.PASS, 4, 4,
                   [probe(Outcome.PASS)]),
        CheckGrade("real-source", "The PC sees your friend", Outcome.FAIL, 0, 2,
                   [probe(Outcome.FAIL, "no answer")], "Do not masquerade.",
                   "the connection was refused; no answer"),
        CheckGrade("only-game-port", "Only one port", Outcome.ERROR if status is Status.ERROR
                   else Outcome.PASS, 0 if status is Status.ERROR else 2, 2,
                   [probe(Outcome.ERROR, "portlab-probe could not be run")]
                   if status is Status.ERROR else []),
        CheckGrade("lan-internet", "The LAN gets out", None, 0, 2,
                   message="not judged: router.sh did not finish"),
    ]
    score = sum(c.points for c in checks)
    return Grade("forwarding", "alice", variant, status, score, 10, 8,
                 [FileRun("router.sh", "router", "sh router.sh", 1, "iptables: bad rule\n",
                          0.1)], checks, "", 3.25)


def test_json_says_score_status_and_each_check() -> None:
    data = json.loads(view.as_json(sample()))
    assert data["format"] == 1 and data["status"] == "failed" and data["passed"] is False
    assert (data["score"], data["max_score"], data["pass_mark"]) == (6, 10, 8)
    assert data["variant"]["params"]["game_port"] == sample().variant.params["game_port"]
    assert [(c["id"], c["status"], c["points"], c["max_points"]) for c in data["checks"]] == [
        ("reach", "pass", 4, 4), ("real-source", "fail", 0, 2),
        ("only-game-port", "pass", 2, 2), ("lan-internet", "not-run", 0, 2)]
    assert data["files"][0]["exit_code"] == 1 and "bad rule" in data["files"][0]["output"]
    errored = json.loads(view.as_json(sample(Status.ERROR)))
    assert errored["status"] == "error" and errored["score"] is None  # no score: no blame


def test_junit_validates_against_the_published_schema() -> None:
    from lxml import etree

    assert XSD.exists(), f"{XSD} is missing: `scripts/bootstrap --test` fetches it"
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    for status in (Status.FAILED, Status.ERROR, Status.PASSED):
        doc = etree.fromstring(view.junit(sample(status)).encode())
        assert schema.validate(doc), schema.error_log
    suite = etree.fromstring(view.junit(sample(Status.ERROR)).encode()).find("testsuite")
    assert suite.get("failures") == "2" and suite.get("errors") == "1"
    assert [c.get("classname") for c in suite.findall("testcase")] == ["forwarding"] * 4
    assert suite.find("testcase[@name='real-source']/failure").get("message") == \
        "the connection was refused; no answer"
    from portlab.probes.runner import CheckResult, Report
    from portlab.views import report as check_report

    checks = Report("forwarding", "forwarding", [
        CheckResult("reach", "t", None, Outcome.FAIL, [probe(Outcome.FAIL, "x")], "h", 0.1),
        CheckResult("b", "t", None, Outcome.ERROR, [probe(Outcome.ERROR, "y")], "", 0.1)], 0.2)
    assert schema.validate(etree.fromstring(check_report.junit(checks).encode())), \
        schema.error_log  # `portlab check --junit` too


def test_gradescope_results_have_score_and_tests() -> None:
    data = view.gradescope(sample())
    assert data["score"] == 6 and len(data["tests"]) == 4
    assert data["tests"][1] == {"name": "real-source: The PC sees your friend", "score": 0,
                                "max_score": 2, "status": "failed",
                                "output": "the connection was refused; no answer",
                                "visibility": "visible"}


def test_the_class_csv_has_a_line_per_student() -> None:
    text = view.csv_text([("alice", sample(), ""), ("bob", None, "router.sh is missing")],
                         ["reach", "real-source", "only-game-port", "lan-internet"])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["student"] == "alice" and rows[0]["score"] == "6" and rows[0]["reach"] == "4"
    assert rows[1]["status"] == "unusable" and rows[1]["message"] == "router.sh is missing"


def test_the_terminal_table_shows_points_feedback_and_the_files_output() -> None:
    text = view.terminal(sample(), color=False)
    assert "variant: game_port=" in text
    assert "router.sh on router: `sh router.sh`, exit 1" in text and "bad rule" in text
    assert "FAIL  real-source      0/2" in text and "hint:  Do not masquerade." in text
    assert "Score: 6/10 (pass mark 8): not passed." in text
    assert "No score" in view.terminal(sample(Status.ERROR), color=False)


# --- the starter repository -----------------------------------------------------------------------


def test_classroom_init_writes_a_starter_repository(tmp_path: Path) -> None:
    files = core.classroom_init("vpn", tmp_path / "repo", salt="cs101")
    assert files == [".github/workflows/classroom.yml", ".gitignore", ".gitlab-ci.yml",
                     "INSTRUCTORS.md", "README.md", "submission/laptop/wg0.conf",
                     "submission/vpn-gw.sh"]
    repo = tmp_path / "repo"
    workflow = yaml.safe_load((repo / ".github/workflows/classroom.yml").read_text())
    job = workflow["jobs"]["run-autograding-tests"]
    assert workflow["name"] == "Autograding Tests" and job["runs-on"] == "ubuntu-latest"
    assert job["env"]["PORTLAB_COURSE_SALT"] == "cs101"
    grade_step = next(s for s in job["steps"] if s.get("id") == "portlab")
    assert grade_step["run"].splitlines()[1].startswith(
        "portlab grade vpn --submission submission --classroom")
    reporter = job["steps"][-1]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    runners = view.runner_ids([c.id for c in core.get_lab("vpn").checks])
    assert reporter["env"] == {f"{r.upper()}_RESULTS": f"${{{{steps.portlab.outputs.{r}}}}}"
                               for r in runners.values()}
    assert reporter["with"] == {"runners": ",".join(runners.values())}
    assert reporter["if"] == "always()"
    assert grade_step["if"] == "${{ !cancelled() && steps.checkout.outcome == 'success' }}"
    uses = [s.get("uses", "") for s in job["steps"]]
    assert "actions/cache/restore@v4" in uses and "actions/cache/save@v4" in uses  # saved
    # right after the image is there, whatever the grade says
    assert job["env"]["PORTLAB_RUNNERS"] == reporter["with"]["runners"]
    assert job["env"]["PORTLAB_ASSIGNMENT"] == "vpn"
    assert "checks" not in workflow["permissions"]  # the reporter writes annotations only
    from portlab import __version__
    assert job["env"]["PORTLAB_INSTALL"] == f"portlab-net=={__version__}"
    install = next(s for s in job["steps"] if s.get("id") == "install")["run"]
    assert "portlab\" --version" in install
    gitlab = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["grade"]
    assert gitlab["artifacts"]["reports"]["junit"] == "portlab-junit.xml"
    assert gitlab["services"] == [starter.GITLAB_DIND] and gitlab["image"] == \
        starter.GITLAB_DOCKER
    assert gitlab["variables"]["PORTLAB_COURSE_SALT"] == "cs101"
    readme = (repo / "README.md").read_text()
    assert "portlab show vpn --student YOUR-USERNAME --salt cs101" in readme
    assert "`submission/laptop/wg0.conf`: placed on `laptop` at `/etc/wireguard/wg0.conf`" in \
        readme
    assert "PORTLAB_LABS_PATH" in (repo / "INSTRUCTORS.md").read_text()
    with pytest.raises(UsageError):
        core.classroom_init("vpn", tmp_path / "repo")  # not empty: nothing is overwritten


def test_classroom_solution_writes_a_variants_reference(tmp_path: Path) -> None:
    var, files = core.classroom_solution("forwarding", tmp_path / "s", student="alice")
    assert files == ["router.sh"]
    text = (tmp_path / "s" / "router.sh").read_text()
    home = IPv4Network(var.subnets["home"])
    assert f"--dport {var.params['game_port']}" in text and str(home.network_address + 10) in text
    _, wrong = core.classroom_solution("forwarding", tmp_path / "w", student="alice",
                                       wrong="every-port")
    assert "--dport" not in (tmp_path / "w" / "router.sh").read_text().splitlines()[0]
    with pytest.raises(UsageError):
        core.classroom_solution("vpn", tmp_path / "v", student="alice", wrong="plain-route")


def test_a_wrong_solution_with_a_placed_file_is_written_as_a_submission(tmp_path: Path) -> None:
    """vpn: the wrong script writes the laptop's wg0.conf (`cat > ... <<EOF`); that is the
    placed file, and `wg-quick up wg0` is left to the grade (the submission's `run`)."""
    core.classroom_solution("vpn", tmp_path / "k", student="alice", wrong="key-not-registered")
    conf = (tmp_path / "k" / "laptop" / "wg0.conf").read_text()
    assert conf.startswith("[Interface]") and "EOF" not in conf and "wg-quick" not in conf
    core.classroom_solution("vpn-privacy", tmp_path / "s", student="alice", wrong="split-tunnel")
    conf = (tmp_path / "s" / "laptop" / "wg0.conf").read_text()
    assert "AllowedIPs = 0.0.0.0/0" not in conf  # the split tunnel itself
    assert "iptables" in (tmp_path / "s" / "laptop.sh").read_text()
    with pytest.raises(UsageError, match="has no file for isp"):
        core.classroom_solution("vpn", tmp_path / "p", student="alice",
                                wrong="plain-route-everywhere")


@pytest.mark.parametrize(("lab", "graded"), [
    ("forwarding", ("router",)),  # no probe starts there: its scan reads the router's rules
    ("nat", ("router",)),
    ("ports", ("server",)),
    ("vpn-portforward", ("vpn", "server")),
])
def test_a_grade_puts_a_grader_beside_every_submission_node_a_probe_reads(
        lab: str, graded: tuple[str, ...]) -> None:
    """A grader (read-only, the image's own tools) runs the probes of a node a submission ran
    on: also where a scan of every port reads the ports the target's rules name, so that a
    submission's own `iptables-save` cannot leave one out (tests/integration/test_cheats.py)."""
    from portlab.grading.shape import shape
    from portlab.model.variant import variant_lab

    got, var = variant_lab(lab, "s1")
    assert set(shape(got, var, graders=True).graders) == set(graded)
    assert shape(got, var).graders == ()  # `up --student`: none
