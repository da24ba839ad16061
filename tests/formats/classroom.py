"""What GitHub Classroom's reporter (classroom-resources/autograding-grading-reporter, tag
v1, run under Node 20 on portlab's payloads) does with a workflow's runners, as measured
and as its source reads them. Written from that reading; none of its code is here.

* For each id in the `runners` input (comma-separated), it reads the environment variable
  `<ID uppercased>_RESULTS`, decodes it from base64 and parses it as JSON. A missing,
  empty or undecodable one throws ("Unexpected end of JSON input") and the whole step
  fails with no points posted; an id other than letters and digits hides that message
  behind "The runners input must be a comma-separated list of strings".
* Points posted to Classroom (the "Points N/M" annotation): N is the sum of every test's
  `score`, M the sum of the runners' `max_score`; a runner whose max_score is 0 or
  missing is left out of both, and with M 0 nothing is posted.
* The job log's table: per runner, (tests whose status is "pass" / tests) x max_score.
* The step fails with "Some tests failed." if a runner's status is "fail", else with
  "Some tests errored." if one is "error".
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

RUNNER_SCHEMA = json.loads((Path(__file__).parent / "classroom-runner.schema.json").read_text())
GRADESCOPE_SCHEMA = json.loads(
    (Path(__file__).parent / "gradescope-results.schema.json").read_text())
IDS = re.compile(r"^([a-zA-Z0-9]+,)*[a-zA-Z0-9]+$")


class ReporterFailed(Exception):
    """The reporter's step would fail before posting anything."""


@dataclass
class Reported:
    posted: tuple[float, float] | None  # "Points N/M", or None when nothing is posted
    log: dict[str, tuple[float, float]]  # per runner, the log table's "score/max"
    step: str  # "passed", "Some tests failed.", "Some tests errored."
    marks: dict[str, list[str]]  # per runner, its tests' marks: "✅", "❌", "Error"


def report(runners: str, env: dict[str, str]) -> Reported:
    if not IDS.fullmatch(runners):
        raise ReporterFailed("runner ids other than letters and digits hide its errors")
    results: dict[str, dict[str, Any]] = {}
    for rid in runners.split(","):
        raw = env.get(f"{rid.strip().upper()}_RESULTS")
        if not raw:
            raise ReporterFailed(f"{rid}: Unexpected end of JSON input")
        try:
            payload = json.loads(base64.b64decode(raw, validate=True))
        except ValueError as exc:
            raise ReporterFailed(f"{rid}: {exc}") from None
        jsonschema.validate(payload, RUNNER_SCHEMA)
        results[rid] = payload
    total = maximum = 0.0
    log, marks = {}, {}
    for rid, r in results.items():
        max_score = r.get("max_score") or 0
        passed = sum(1 for t in r["tests"] if t["status"] == "pass")
        log[rid] = (passed / len(r["tests"]) * max_score, max_score)
        marks[rid] = [{"pass": "✅", "error": "Error"}.get(t["status"], "❌")
                      for t in r["tests"]]
        if max_score:
            maximum += max_score
            total += sum(t["score"] for t in r["tests"])
    statuses = [r["status"] for r in results.values()]
    step = ("Some tests failed." if "fail" in statuses else
            "Some tests errored." if "error" in statuses else "passed")
    return Reported((total, maximum) if maximum else None, log, step, marks)


def outputs(text: str) -> dict[str, str]:
    """`$GITHUB_OUTPUT`'s `name=value` lines, as GitHub reads them (the last one wins)."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        out[name] = value
    return out


def reporter_env(workflow: dict[str, Any],
                 step_outputs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The reporter step's runners and environment, its `${{steps.portlab.outputs.X}}`
    expressions filled in from the grading step's outputs."""
    step = workflow["jobs"]["run-autograding-tests"]["steps"][-1]
    env = {}
    for name, expr in step["env"].items():
        found = re.fullmatch(r"\$\{\{\s*steps\.portlab\.outputs\.(\w+)\s*\}\}", expr)
        assert found, expr
        env[name] = step_outputs.get(found.group(1), "")
    return step["with"]["runners"], env
