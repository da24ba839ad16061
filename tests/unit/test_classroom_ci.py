"""Grading in CI as the CI systems really read it: GitHub Classroom's reporter (a model of
its reading, tests/formats/classroom.py), GitHub's and GitLab's own schemas for the starter's
files (check-jsonschema's vendored ones, offline), Gradescope's documented fields, and a
payload for the reporter on every way `portlab grade --classroom` can end."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from portlab import core
from portlab.grading.result import CheckGrade, Status
from portlab.probes.base import Outcome
from portlab.views import grade as view
from tests.formats import classroom as reporter
from tests.unit.test_grading import ROOT, sample

BIN = Path(sys.executable).parent


def lines_env(runners: dict[str, dict]) -> dict[str, str]:  # type: ignore[type-arg]
    outs = reporter.outputs("\n".join(view.classroom_lines(runners)))
    return {f"{rid.upper()}_RESULTS": value for rid, value in outs.items()}


def reported(runners: dict[str, dict]) -> reporter.Reported:  # type: ignore[type-arg]
    return reporter.report(",".join(runners), lines_env(runners))


def empty_submission() -> object:
    """The untouched starter: two checks hold as they do untouched, and earn nothing."""
    g = sample(Status.FAILED)
    g.checks = [dataclasses.replace(c, outcome=Outcome.PASS if c.id in ("reach", "only-game-port")
                                    else Outcome.FAIL, points=0) for c in g.checks]
    g.score, g.message = 0, "the submission is empty: its files hold nothing but comments"
    return g


def test_the_log_and_classroom_say_the_same_score_with_unequal_points() -> None:
    grade = sample()  # reach 4/4, real-source 0/2, only-game-port 2/2, lan-internet not run
    runners = view.classroom(grade)
    assert list(runners) == ["reach", "realsource", "onlygameport", "laninternet"]
    for r in runners.values():
        jsonschema.validate(r, reporter.RUNNER_SCHEMA)
    said = reported(runners)
    assert said.posted == (6, 10)  # "Points 6/10"
    assert sum(s for s, _ in said.log.values()) == 6 and sum(m for _, m in said.log.values()) == 10
    assert said.log["reach"] == (4, 4) and said.log["realsource"] == (0, 2)
    assert said.step == "Some tests failed."


def test_zero_point_checks_fail_in_every_format() -> None:
    grade = empty_submission()
    said = reported(view.classroom(grade))  # type: ignore[arg-type]
    assert said.posted == (0, 10) and all(m == ["❌"] for m in said.marks.values())
    assert sum(s for s, _ in said.log.values()) == 0
    from lxml import etree

    suite = etree.fromstring(view.junit(grade).encode()).find("testsuite")  # type: ignore[arg-type]
    assert suite.get("failures") == "4" and len(suite.findall("testcase/failure")) == 4
    gs = view.gradescope(grade)  # type: ignore[arg-type]
    assert [t["status"] for t in gs["tests"]] == ["failed"] * 4
    assert "| 0/4 | failed |" in view.markdown(grade)  # type: ignore[arg-type]


def test_a_grade_that_could_not_run_posts_no_points_and_errors() -> None:
    runners = view.classroom(sample(Status.ERROR))
    assert {r["max_score"] for r in runners.values()} == {0}
    said = reported(runners)
    assert said.posted is None and said.step == "Some tests errored."
    assert all(m == ["Error"] for m in said.marks.values())


def test_a_passing_grade_posts_full_marks() -> None:
    grade = sample(Status.PASSED)
    grade.checks = [dataclasses.replace(c, outcome=Outcome.PASS, points=c.max_points)
                    for c in grade.checks]
    grade.score = 10
    said = reported(view.classroom(grade))
    assert said.posted == (10, 10) and said.step == "passed"
    assert sum(s for s, _ in said.log.values()) == 10


def test_runner_ids_are_letters_and_digits_and_unique() -> None:
    assert view.runner_ids(["only-game-port", "only_game_port", "ünï", "x" * 40]) == {
        "only-game-port": "onlygameport", "only_game_port": "onlygameport2", "ünï": "n",
        "x" * 40: "x" * 20}
    for lab in core.labs():
        ids = view.runner_ids([c.id for c in lab.checks])
        assert reporter.IDS.fullmatch(",".join(ids.values())), lab.name
        assert len(set(ids.values())) == len(ids)


def test_gradescope_results_have_only_documented_fields() -> None:
    for grade in (sample(), sample(Status.PASSED), empty_submission()):
        jsonschema.validate(view.gradescope(grade), reporter.GRADESCOPE_SCHEMA)  # type: ignore


# --- every way out of `grade --classroom` gives the reporter its runners -------------------


def classroom_run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, reporter.Reported]:
    out = tmp_path / "github-output"
    out.write_text("")
    full = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_OUTPUT": str(out),
            "DOCKER_HOST": "unix:///nonexistent/docker.sock", **env}
    for var in ("PORTLAB_STUDENT", "GITHUB_ACTOR", "GITHUB_REPOSITORY", "PORTLAB_ASSIGNMENT"):
        if var not in env:
            full.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "portlab", "grade", *args, "--classroom"],
                          capture_output=True, text=True, timeout=60, env=full)
    outs = reporter.outputs(out.read_text())
    runners = env.get("PORTLAB_RUNNERS") or ",".join(outs)
    said = reporter.report(runners, {f"{k.upper()}_RESULTS": v for k, v in outs.items()})
    return proc.returncode, proc.stderr, said


def test_an_unusable_submission_fails_every_check_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()  # no router.sh
    code, err, said = classroom_run(tmp_path, "forwarding", "--submission",
                                    str(tmp_path / "sub"), "--student", "alice")
    assert code == 2 and "router.sh" in err
    assert said.posted == (0, 10) and said.step == "Some tests failed."
    assert set(said.log) == {"reach", "realsource", "onlygameport", "laninternet"}


def test_no_docker_unknown_lab_or_student_is_an_error_that_counts_nothing(
        tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "router.sh").write_text("true\n")
    code, err, said = classroom_run(tmp_path, "forwarding", "--submission",
                                    str(tmp_path / "sub"), "--student", "alice")
    assert code == 3 and "Docker" in err
    assert said.posted is None and said.step == "Some tests errored."
    code, _, said = classroom_run(tmp_path, "no-such-lab", "--submission",
                                  str(tmp_path / "sub"), "--student", "alice",
                                  PORTLAB_RUNNERS="reach,realsource")
    assert code == 2 and said.posted is None and set(said.log) == {"reach", "realsource"}
    code, _, said = classroom_run(tmp_path, "forwarding", "--submission",
                                  str(tmp_path / "sub"))  # no student anywhere
    assert code == 2 and said.posted is None and said.step == "Some tests errored."


# --- the starter's CI files, against GitHub's and GitLab's schemas --------------------------


@pytest.mark.parametrize("salt", ["", "cs101"])
def test_starter_ci_files_pass_githubs_and_gitlabs_schemas(tmp_path: Path, salt: str) -> None:
    workflows, gitlabs = [], []
    for lab in core.labs():
        if not lab.submission:
            continue
        repo = tmp_path / lab.name
        core.classroom_init(lab.name, repo, salt=salt)
        workflows.append(str(repo / ".github/workflows/classroom.yml"))
        gitlabs.append(str(repo / ".gitlab-ci.yml"))
        if salt:
            assert yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["grade"][
                "variables"]["PORTLAB_COURSE_SALT"] == salt
    assert len(workflows) >= 10
    for schema, files in (("vendor.github-workflows", workflows),
                          ("vendor.gitlab-ci", gitlabs)):
        proc = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", schema,
                               *files], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_workflows_fallback_gives_every_runner_an_error_without_portlab(
        tmp_path: Path) -> None:
    core.classroom_init("forwarding", tmp_path / "repo")
    workflow = yaml.safe_load((tmp_path / "repo/.github/workflows/classroom.yml").read_text())
    job = workflow["jobs"]["run-autograding-tests"]
    step = next(s for s in job["steps"] if s.get("id") == "portlab")
    out = tmp_path / "out"
    out.write_text("")
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(out),
                               "PORTLAB_RUNNERS": job["env"]["PORTLAB_RUNNERS"]})
    assert proc.returncode == 127  # no portlab: the shell's "command not found"
    said = reporter.report(*reporter.reporter_env(workflow, reporter.outputs(out.read_text())))
    assert said.posted is None and said.step == "Some tests errored."


def test_a_grade_missing_checks_still_gives_every_runner() -> None:
    grade = sample(Status.ERROR)
    grade.checks = []  # stopped before any check was listed
    every = core.check_list("forwarding")
    said = reported(view.classroom(grade, every))
    assert set(said.log) == {"reach", "realsource", "onlygameport", "laninternet"}
    assert said.posted is None and said.step == "Some tests errored."
    assert "{{" not in json.dumps(view.classroom(grade, every))  # titles rendered


def test_runner_ids_never_start_with_a_digit() -> None:
    assert view.runner_id("6to4") == "c6to4"


def test_the_summary_page_escapes_what_nodes_said() -> None:
    grade = sample()
    grade.checks[1] = dataclasses.replace(
        grade.checks[1], message="![x](http://evil/) <img src=x> [link](y) `code` | *b*")
    text = view.markdown(grade)
    import re

    for raw in ("!", "<", "[", "`", "*"):  # none acts: each is escaped
        assert not re.search(rf"(?<!\\){re.escape(raw)}", text.split("real-source")[1]), raw
    assert "\\!\\[x\\]" in text and "\\<img" in text


def test_a_prefix_that_is_too_short_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTLAB_STUDENT", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "org/nat-week-2-alice")
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    monkeypatch.setenv("PORTLAB_ASSIGNMENT", "nat")
    student, where = core.find_student()
    assert student == "week-2-alice" and "is the assignment's prefix 'nat-week-2'" in where
    monkeypatch.setenv("PORTLAB_ASSIGNMENT", "nat-week-2")
    assert core.find_student() == ("alice", "the repository's name, nat-week-2-alice")


def test_check_grade_credited() -> None:
    assert CheckGrade("a", "t", Outcome.PASS, 2, 2).credited
    assert not CheckGrade("a", "t", Outcome.PASS, 0, 2).credited  # held untouched: no credit
    assert CheckGrade("a", "t", Outcome.PASS, 0, 0).credited
    assert not CheckGrade("a", "t", None, 0, 2).credited
