"""The texts of a starter repository (`portlab classroom init`): README, submission files with
their comments, the GitHub Actions workflow, the GitLab CI file and INSTRUCTORS.md."""

from __future__ import annotations

import json
import shlex

from portlab.model.context import Binding
from portlab.model.types import Lab, SubmissionFile
from portlab.views import layout, topology

SUBMISSION_DIR = "submission"
JUNIT = "portlab-junit.xml"
JSON = "portlab-grade.json"


def _grade_command(lab: Lab, extra: str) -> str:
    return f"portlab grade {lab.name} --submission {SUBMISSION_DIR} {extra}".strip()


def _salt_flag(salt: str) -> str:
    return f" --salt {shlex.quote(salt)}" if salt else ""


def readme(lab: Lab, salt: str) -> str:
    binding = Binding.preview(lab)
    out = [f"# {lab.title}", "", lab.summary, ""]
    if lab.story:
        out += ["## The story", "", binding.render(("story",), lab.story).strip(), ""]
    out += ["## The network", "",
            "Your own copy has addresses and ports of its own (see *Your variant*); this is "
            "the lab's general shape:", "", "```",
            topology.draw(layout.of(binding)), "```", ""]
    for node in lab.nodes:
        if node.role:
            out.append(f"- **{node.name}**: {binding.role(node.name)}")
    out.append("")
    if lab.tasks:
        out += ["## Your tasks", ""]
        for k, task in enumerate(lab.tasks, 1):
            title = binding.render(("tasks", k - 1, "title"), task.title)
            out += [f"### {k}. {title}{' (stretch)' if task.stretch else ''}", "",
                    binding.render(("tasks", k - 1, "text"), task.text).strip(), ""]
    flag = _salt_flag(salt)
    out += [
        "## Your variant", "",
        "Every student gets their own ports and addresses, so bring up *your* lab and read "
        "*your* brief (your GitHub username is your student ID):", "", "```sh",
        f"portlab show {lab.name} --student YOUR-USERNAME{flag}",
        f"portlab up {lab.name} --student YOUR-USERNAME{flag}", "```", "",
        "Work on it with `portlab shell NODE`; `portlab check` tells you how far you are.", "",
        "## What you hand in", "",
        f"Edit the files in `{SUBMISSION_DIR}/` and push. Each push is graded by real traffic "
        "on a fresh copy of your variant:", ""]
    for entry in lab.submission:
        out.append(f"- `{SUBMISSION_DIR}/{entry.file}`: {_what(entry)}")
    out += ["", "The grade, check by check, with what was sent and what came back, is in the "
            "*Actions* tab of your repository. Grade yourself before you push:", "", "```sh",
            _grade_command(lab, f"--student YOUR-USERNAME{flag}"), "```", "",
            "## What is checked", "", "| check | points |", "| --- | --- |"]
    for i, check in enumerate(lab.checks):
        title = binding.render(("checks", i, "title"), check.title)
        out.append(f"| {title} | {lab.points[check.id]} |")
    out += ["", f"You pass with {lab.pass_mark} of {lab.max_points} points.", ""]
    return "\n".join(out)


def _what(entry: SubmissionFile) -> str:
    if entry.path is None:
        return f"a shell script, run as root on `{entry.node}` (`sh {entry.file}`)"
    then = f", then `{entry.run}` runs there" if entry.run else ""
    return f"placed on `{entry.node}` at `{entry.path}`{then}"


def starter_file(lab: Lab, entry: SubmissionFile) -> str:
    comment = entry.comment.strip() or f"Your {entry.file} for lab {lab.name}."
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    if entry.path is None:
        lines.append(f"# portlab grade runs this script as root on {entry.node}.")
    else:
        then = f", then runs `{entry.run}` there" if entry.run else ""
        lines.append(f"# portlab grade places this file on {entry.node} at {entry.path}{then}.")
    head = "#!/bin/sh\n" if entry.path is None else ""
    return head + "\n".join(lines) + "\n"


def github_workflow(lab: Lab, salt: str, install: str) -> str:
    env = f"      PORTLAB_COURSE_SALT: {json.dumps(salt)}\n" if salt else ""
    command = _grade_command(lab, f"--classroom --junit {JUNIT} --json {JSON}")
    return f"""# Grades each push with portlab, by real traffic, and hands the points to GitHub
# Classroom (autograding-grading-reporter sums the checks' points: partial credit).
name: Autograding Tests
'on':
- push
- repository_dispatch
- workflow_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    env:
      PORTLAB_INSTALL: {json.dumps(install)}
{env}    steps:
    - name: Checkout code
      uses: actions/checkout@v4
    - name: Install portlab
      run: |
        python3 -m venv "$RUNNER_TEMP/portlab"
        "$RUNNER_TEMP/portlab/bin/pip" install --quiet "$PORTLAB_INSTALL"
        echo "$RUNNER_TEMP/portlab/bin" >> "$GITHUB_PATH"
    - name: Grade
      id: portlab
      run: {command}
    - name: Autograding Reporter
      if: always()
      uses: classroom-resources/autograding-grading-reporter@v1
      env:
        PORTLAB_RESULTS: "${{{{steps.portlab.outputs.result}}}}"
      with:
        runners: portlab
"""


def gitlab_ci(lab: Lab, salt: str, install: str) -> str:
    salt_line = f"  PORTLAB_COURSE_SALT: {json.dumps(salt)}\n" if salt else ""
    command = _grade_command(lab, f"--junit {JUNIT} --json {JSON}")
    return f"""# Grades each push with portlab, by real traffic, in Docker-in-Docker (the runner
# must allow privileged containers: see INSTRUCTORS.md). The JUnit report shows each check
# in the merge request; portlab-grade.json holds the points.
grade:
  image: docker:27-cli
  services:
    - docker:27-dind
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
    PORTLAB_INSTALL: {json.dumps(install)}
{salt_line}  before_script:
    - apk add --no-cache python3 py3-pip
    - python3 -m venv /opt/portlab && /opt/portlab/bin/pip install --quiet "$PORTLAB_INSTALL"
    - export PATH="/opt/portlab/bin:$PATH"
  script:
    - {command}
  artifacts:
    when: always
    paths:
      - {JSON}
      - {JUNIT}
    reports:
      junit: {JUNIT}
"""


def instructors(lab: Lab, salt: str, install: str) -> str:
    flag = _salt_flag(salt)
    salt_text = (f"The course salt is `{salt}`: it is in the workflow files and in the "
                 "README, since students need it to see their variant. It keeps variants "
                 "different from another course's; it is not a secret." if salt else
                 "No course salt is set: variants depend on the student ID alone, and are "
                 "the same as another course's. `portlab classroom init --salt S` sets one.")
    return f"""# Setting up lab '{lab.name}' for a course

This repository is the starter students get. Each push is graded by `portlab grade` on a
fresh copy of the student's own variant (their ports and subnets are derived from their
student ID), by real traffic, with {lab.max_points} points (pass mark {lab.pass_mark}).

## GitHub Classroom

1. Make this repository a template repository, and create an assignment from it.
2. Leave Classroom's own autograding tests empty: `.github/workflows/classroom.yml` grades
   and feeds Classroom's reporter, check by check, so partial credit reaches Classroom.
3. The student ID is the GitHub username (`$GITHUB_ACTOR`).

## GitLab

`.gitlab-ci.yml` grades in Docker-in-Docker, so the runner must allow privileged containers
(`privileged = true` in its `config.toml`). The JUnit report appears in merge requests.
The student ID is `$GITLAB_USER_LOGIN`.

## portlab itself

CI installs portlab into a virtualenv with `pip install "{install}"` (the
`PORTLAB_INSTALL` variable of both files): change it to where your course gets portlab
from (a name on your package index, a git URL, a wheel's URL).

## Variants

{salt_text}

Check your setup with a student's reference solution:

```sh
portlab classroom solution {lab.name} /tmp/alice --student alice{flag}
portlab grade {lab.name} --submission /tmp/alice --student alice{flag}
```

## The solutions are public

The shipped labs' reference solutions are part of portlab: anyone can run `portlab solve
{lab.name}` or `portlab classroom solution`. Variants make a copied solution fail, but
the idea of the solution is public. To grade with solutions students never see, keep your
own lab folder (copy `labs/{lab.name}/`, change it, keep it private) and point CI at it:
set `PORTLAB_LABS_PATH` to a folder the CI job fetches from a private place (a private
repository checked out with a deploy key, or a CI secret file). A lab of that name there is
used instead of the shipped one.

## Grading a whole class on your machine

One folder per student, named by their ID, each holding that student's `{SUBMISSION_DIR}/`
files:

```sh
portlab grade {lab.name} --submissions ./class{flag} --csv grades.csv --json ./grades
```

Every push is graded on its own CI runner, so a class of any size scales on the CI system.
"""
