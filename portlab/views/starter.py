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


# The Docker images of the GitLab job: the CLI, and the daemon as a service (Docker's own
# images on Docker Hub; the 27 series is no longer published).
GITLAB_DOCKER = "docker:29-cli"
GITLAB_DIND = "docker:29-dind"
IMAGE_TAR = "portlab-node-image.tar"


def assignment_prefix(text: str) -> str:
    """An assignment's repository prefix, checked: what GitHub allows in a repository name."""
    import re

    from portlab.errors import UsageError, printable

    if not re.fullmatch(r"[A-Za-z0-9._-]{1,80}", text):
        raise UsageError(f"'{printable(text)}' cannot be a repository prefix",
                         hint="letters, digits, '.', '_' and '-' (GitHub Classroom's "
                              "assignment prefix)")
    return text


def _runners(lab: Lab) -> dict[str, str]:
    from portlab.views.grade import runner_ids

    return runner_ids([c.id for c in lab.checks])


def github_workflow(lab: Lab, salt: str, install: str, assignment: str) -> str:
    runners = _runners(lab)
    names = ",".join(runners.values())
    env = f"      PORTLAB_COURSE_SALT: {json.dumps(salt)}\n" if salt else ""
    results = "".join(f"        {rid.upper()}_RESULTS: \"${{{{steps.portlab.outputs.{rid}}}}}\"\n"
                      for rid in runners.values())
    command = _grade_command(lab, f"--classroom --junit {JUNIT} --json {JSON}")
    return f"""# Grades each push with portlab, by real traffic, and hands the points to GitHub
# Classroom: a reporter runner per check, each with its own points, so that the job's log
# and Classroom show the same score. The student is the repository's name after
# "$PORTLAB_ASSIGNMENT-" (Classroom names it <assignment-prefix>-<login>), not whoever
# pushed. The node image is kept in the Actions cache between runs.
name: Autograding Tests
'on':
- push
- repository_dispatch
- workflow_dispatch
permissions:
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    env:
      PORTLAB_INSTALL: {json.dumps(install)}
      PORTLAB_ASSIGNMENT: {json.dumps(assignment)}
      PORTLAB_RUNNERS: {json.dumps(names)}
{env}    steps:
    - name: Checkout code
      id: checkout
      uses: actions/checkout@v4
    - name: Install portlab
      id: install
      run: |
        python3 -m venv "$RUNNER_TEMP/portlab"
        "$RUNNER_TEMP/portlab/bin/pip" install --quiet "$PORTLAB_INSTALL"
        echo "$RUNNER_TEMP/portlab/bin" >> "$GITHUB_PATH"
        "$RUNNER_TEMP/portlab/bin/portlab" --version
        echo "tag=$("$RUNNER_TEMP/portlab/bin/portlab" image tag)" >> "$GITHUB_OUTPUT"
    - name: Node image from the cache
      id: cache
      uses: actions/cache/restore@v4
      with:
        path: {IMAGE_TAR}
        key: portlab-${{{{ steps.install.outputs.tag }}}}
    - name: Node image
      run: |
        if [ -f {IMAGE_TAR} ]; then docker load --input {IMAGE_TAR}; else
          portlab image build
          docker save --output {IMAGE_TAR} "${{{{ steps.install.outputs.tag }}}}"
        fi
    - name: Node image into the cache
      if: steps.cache.outputs.cache-hit != 'true'
      uses: actions/cache/save@v4
      with:
        path: {IMAGE_TAR}
        key: portlab-${{{{ steps.install.outputs.tag }}}}
    - name: Grade
      id: portlab
      if: ${{{{ !cancelled() && steps.checkout.outcome == 'success' }}}}
      run: |
        rc=0
        {command} || rc=$?
        # Every runner the reporter reads gets a result, whatever happened above (portlab
        # missing, or killed before it wrote one): an error, which counts no points.
        for r in ${{PORTLAB_RUNNERS//,/ }}; do
          grep -q "^$r=" "$GITHUB_OUTPUT" 2>/dev/null && continue
          fmt='{{"version":1,"status":"error","max_score":0,"tests":[{{"name":"%s",'
          fmt="$fmt"'"status":"error","score":0,"message":"portlab ended without a result '
          fmt="$fmt"'(exit %s): see the Grade step of this job","test_code":"portlab grade",'
          fmt="$fmt"'"line_no":0}}]}}'
          said=$(printf "$fmt" "$r" "$rc")
          echo "$r=$(printf %s "$said" | base64 -w0)" >> "$GITHUB_OUTPUT"
        done
        exit $rc
    - name: Keep the grade's files
      if: always()
      uses: actions/upload-artifact@v4
      with:
        name: portlab-grade
        path: |
          {JSON}
          {JUNIT}
        if-no-files-found: ignore
    - name: Autograding Reporter
      if: always()
      uses: classroom-resources/autograding-grading-reporter@v1
      env:
{results}      with:
        runners: {names}
"""


def gitlab_ci(lab: Lab, salt: str, install: str, assignment: str) -> str:
    salt_line = f"    PORTLAB_COURSE_SALT: {json.dumps(salt)}\n" if salt else ""
    command = _grade_command(lab, f"--junit {JUNIT} --json {JSON}")
    return f"""# Grades each push with portlab, by real traffic, in Docker-in-Docker (the runner
# must allow privileged containers: see INSTRUCTORS.md). The JUnit report shows each check
# in the merge request; portlab-grade.json holds the points. The student is the project's
# name after "$PORTLAB_ASSIGNMENT-".
grade:
  image: {GITLAB_DOCKER}
  services:
    - {GITLAB_DIND}
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
    PORTLAB_INSTALL: {json.dumps(install)}
    PORTLAB_ASSIGNMENT: {json.dumps(assignment)}
{salt_line}  before_script:
    - apk add --no-cache python3 py3-pip
    - python3 -m venv /opt/portlab && /opt/portlab/bin/pip install --quiet "$PORTLAB_INSTALL"
    - export PATH="/opt/portlab/bin:$PATH"
    - portlab --version
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


def instructors(lab: Lab, salt: str, install: str, assignment: str) -> str:
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

## What grading in the students' CI can and cannot protect

Read this first. A student has write access to their own repository, workflow included.
They can change `.github/workflows/classroom.yml` or `.gitlab-ci.yml` to skip grading, to
print any secret the job can read, or to hand the reporter a payload of their own: the
points Classroom records are whatever the job's last step says. portlab cannot prevent
that from inside a job the student controls. So:

- the points in the students' repositories are **feedback**: fast, check by check, with
  what was sent and what came back, and they cannot be faked *by the submission itself*
  (its files run on the lab's nodes, and portlab's checks judge from nodes it controls);
- **summative grades belong on the course's side**: clone the students' repositories
  (for example `gh classroom clone student-repos`), put each one's `{SUBMISSION_DIR}/`
  in a folder named by their ID, and grade them all with `portlab grade --submissions`
  (below), on a machine only the course controls;
- put nothing secret in the students' workflows (a deploy key or a CI secret that fetches
  a private lab can be printed by a changed workflow).

## GitHub Classroom

1. Make this repository a template repository, and create an assignment from it whose
   repository prefix is `{assignment}` (or set `PORTLAB_ASSIGNMENT` in
   `.github/workflows/classroom.yml` to the prefix you chose).
2. Leave Classroom's own autograding tests empty: the workflow grades and feeds Classroom's
   reporter (`autograding-grading-reporter@v1`), a runner per check with that check's
   points, so the job's log and Classroom show the same score, with partial credit.
3. The student ID is the repository's name after `{assignment}-` (Classroom names it
   `<prefix>-<login>`), so a push or a re-run by an instructor still grades the student's
   variant. Where the name does not start with the prefix (this template itself), portlab
   falls back to whoever started the run (`$GITHUB_ACTOR`) and says so in the log.
   `PORTLAB_STUDENT`, if set, comes before both. Mind the prefix: with a prefix longer than
   `{assignment}` (say `{assignment}-week-2`), set `PORTLAB_ASSIGNMENT` to it, or every
   student is graded as `week-2-<login>` (the log warns when the name ends in the login of
   whoever pushed). In a group assignment the repository is `<prefix>-<team>`: the team's
   name is the ID, and the team brings its lab up with `--student <team>`.
4. Whatever happens, the reporter gets a result for every check: an unusable submission
   fails every check with the reason; a grade that could not run (Docker, a probe that
   could not observe) posts no points at all, and the job fails as errored.
5. The node image is kept in the Actions cache, keyed by its tag, and saved as soon as it
   is built, whatever the grade: a repository's first run of a portlab version builds it,
   its later runs load it (the cache is per repository: each student's first run builds).
   The grade's JSON and JUnit files are kept as the run's artifact `portlab-grade`.

## GitLab

`.gitlab-ci.yml` grades in Docker-in-Docker ({GITLAB_DIND}), so the runner must allow
privileged containers (`privileged = true` in its `config.toml`). The JUnit report appears
in merge requests. The student ID is the project's name after `{assignment}-`, else
`$GITLAB_USER_LOGIN` (who started the pipeline). Move the image tags to Docker's current
major version when it changes.

## Gradescope

Gradescope's autograder cannot run portlab: it runs your code inside a container of its
own, with no Docker daemon and without the privileges a lab needs (creating networks and
containers, iptables), and Gradescope documents no way to get them. `portlab grade
--gradescope FILE` writes Gradescope's `results.json` format, for a course that grades on
its own machine and hands results to an autograder of its own making; portlab ships no
such bridge.

## portlab itself

CI installs portlab into a virtualenv with `pip install "{install}"` (the `PORTLAB_INSTALL`
variable of both files), this exact version, and prints `portlab --version`. On PyPI,
portlab's distribution is named `portlab-net` (`portlab` there is another project). To use
another source, set `PORTLAB_INSTALL` to any pip requirement: a git URL
(`git+https://example.org/portlab.git@v0.1.0`), or a wheel's URL or path.

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
own lab folder (copy `labs/{lab.name}/`, change it, keep it private) and grade on the
course's side with `PORTLAB_LABS_PATH` pointing at it: a lab of that name there is used
instead of the shipped one. Do not fetch it from the students' CI (see above).

## Grading a whole class on your machine

One folder per student, named by their ID, each holding that student's `{SUBMISSION_DIR}/`
files:

```sh
portlab grade {lab.name} --submissions ./class{flag} --csv grades.csv --json ./grades
```

This is the grade to record: nothing in it ran under a student's control but their files.
"""
