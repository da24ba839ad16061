"""portlab.labtest without Docker: the cases of a lab, and how a case's checks are judged.

The runtime is replaced by a fake that "fails" the checks a case's scripts
name, so that each comparison rule is seen on its own. The real thing, on
real containers, is tests/integration/test_labs.py and test_labtest.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from portlab import labtest
from portlab.errors import RuntimeProblem, UsageError
from portlab.probes.base import Outcome
from portlab.views import labtest as view
from tests.unit.labfiles import minimal, parse_data


def lab_with_stretch() -> Any:
    data = minimal()
    data["tasks"] = [{"id": "main", "title": "the work", "text": "do it"},
                     {"id": "extra", "title": "more", "text": "if you like", "stretch": True}]
    web = data["checks"][0]
    web["task"] = "main"
    data["checks"] += [
        {**copy.deepcopy(web), "id": "also", "title": "also"},
        {**copy.deepcopy(web), "id": "bonus", "title": "a stretch, by its task", "task": "extra"},
        {**copy.deepcopy(web), "id": "flag", "title": "a stretch, by itself", "task": "main",
         "stretch": True},
    ]
    data["untouched"] = {"fails": ["bonus", "web"]}  # out of order on purpose
    data["wrong_solutions"] = [
        {"name": "w1", "description": "breaks web", "apply": {"a": "fail web bonus flag"},
         "fails": ["web"]},
        {"name": "w2", "description": "breaks the bonus", "apply": {"a": "fail bonus"},
         "fails": ["bonus"]},
    ]
    return parse_data(data)


class FakeRuntime:
    """runtime.up/run_scripts/run_checks/down: a script "fail X Y" fails checks X and Y."""

    def __init__(self, untouched: list[str], errors: tuple[str, ...] = (),
                 broken_up: bool = False) -> None:
        self.untouched, self.errors, self.broken_up = untouched, errors, broken_up
        self.live: dict[str, list[str]] = {}
        self.removed: list[str] = []

    def ensure_image(self, progress: Any = None) -> str:
        return "portlab/node:fake"

    def up(self, lab: Any, name: str, progress: Any = None) -> str:
        if self.broken_up:
            raise RuntimeProblem("the engine said no")
        self.live[name] = list(self.untouched)
        return name

    def run_scripts(self, inst: str, lab: Any, scripts: dict[str, str]) -> None:
        self.live[inst] = [w for s in scripts.values() for w in s.split()[1:]]

    def run_checks(self, lab: Any, inst: str, *, explained: bool = False) -> Any:
        failing = set(self.live[inst])

        class Report:
            def failed_ids(_self) -> list[str]:
                return [c.id for c in lab.checks if c.id in failing and c.id not in self.errors]

            def errored_ids(_self) -> list[str]:
                return [c.id for c in lab.checks if c.id in self.errors]
        return Report()

    def down(self, name: str, progress: Any = None) -> None:
        self.live.pop(name, None)
        self.removed.append(name)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(**kw: Any) -> FakeRuntime:
        rt = FakeRuntime(**kw)
        for name in ("ensure_image", "up", "run_scripts", "run_checks", "down"):
            monkeypatch.setattr(labtest.runtime, name, getattr(rt, name))
        return rt
    return install


def test_cases_are_untouched_solution_then_each_wrong_one_in_check_order() -> None:
    lab = lab_with_stretch()
    cases = labtest.cases(lab, mutants=False)
    assert [c.name for c in cases] == ["untouched", "solution", "wrong: w1", "wrong: w2"]
    assert [c.name for c in labtest.cases(lab)][4:] == ["mutant: stopped@a/web"]
    assert cases[0].expected == ("web", "bonus")  # the lab's check order, not the file's
    assert cases[1].expected == () and cases[1].scripts == {"a": "true"}
    assert [c.stretch_optional for c in cases] == [False, False, True, True]
    assert labtest.stretch_checks(lab) == {"bonus", "flag"}
    assert [c.name for c in labtest.cases(lab, ["w2", "untouched"])] == ["untouched",
                                                                          "wrong: w2"]
    with pytest.raises(UsageError, match="has no case 'nope'") as err:
        labtest.cases(lab, ["nope"])
    assert err.value.hint == "its cases: untouched, solution, w1, w2, stopped@a/web"


def test_a_lab_that_does_what_it_declares_passes(fake: Any) -> None:
    rt = fake(untouched=["web", "bonus"])
    result = labtest.run(lab_with_stretch(), jobs=2, mutants=False)
    assert result.ok and result.jobs == 2
    assert [r.ok for r in result.results] == [True] * 4
    # w1 also fails the stretch checks it does not name: noted, not counted
    assert result.results[2].failed == ["web"] and result.results[2].ignored == ["bonus", "flag"]
    assert rt.live == {} and len(rt.removed) == 4  # every instance removed
    assert "4 of 4 cases as declared" in view.table(result, color=False)
    assert "wrong: w1 also fails the stretch check(s) bonus, flag" in view.table(result,
                                                                               color=False)


def test_the_untouched_case_must_name_its_stretch_checks(fake: Any) -> None:
    fake(untouched=["web"])  # bonus passes untouched, though declared to fail
    result = labtest.run(lab_with_stretch(), only=["untouched"])
    [r] = result.results
    assert not r.ok and r.missing() == ["bonus"] and r.unexpected() == []
    text = view.table(result, color=False)
    assert "declared to fail, but passed: bonus" in text and "MISMATCH" in text


def test_an_unjudged_check_is_a_mismatch_never_a_pass(fake: Any) -> None:
    fake(untouched=["web", "bonus"], errors=("also",))
    result = labtest.run(lab_with_stretch(), only=["solution"])
    [r] = result.results
    assert not r.ok and r.errors == ["also"] and r.failed == []
    assert not result.ok
    assert "NOT JUDGED" in view.table(result, color=False)
    assert view.as_json(result)["cases"][0]["errors"] == ["also"]


def test_a_case_that_cannot_start_says_why_and_leaves_nothing(fake: Any) -> None:
    rt = fake(untouched=[], broken_up=True)
    result = labtest.run(lab_with_stretch(), only=["untouched"])
    [r] = result.results
    assert not r.ok and r.problem == "the engine said no"
    assert "could not run: the engine said no" in view.table(result, color=False)
    assert len(rt.removed) == 1


def test_no_case_is_no_pass() -> None:
    assert not labtest.LabTest("x", []).ok


def test_outcome_names_are_what_the_report_uses() -> None:
    assert Outcome.ERROR.value == "error"


def test_mutants_are_killed_survive_or_are_declared_to(fake: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A mutant is killed when any check fails; one that survives is a mismatch unless the
    lab says why (`survives:`); a name in `survives:` that is no mutant is a mismatch too."""
    from portlab.mutants import Mutant, NotApplicable

    def n_a(inst: Any, lab: Any) -> dict[str, str]:
        raise NotApplicable("the solution does it already")

    battery = [Mutant("killed@a", "breaks web", lambda i, lab: {"a": "fail web"}),
               Mutant("survives@a", "changes nothing checked", lambda i, lab: {"a": "fail"}),
               Mutant("declared@a", "changes nothing checked", lambda i, lab: {"a": "fail"}),
               Mutant("n-a@a", "cannot be made", n_a)]
    monkeypatch.setattr(labtest, "battery", lambda lab: battery)
    rt = fake(untouched=["web", "bonus"])

    def mutate(inst: str, lab: Any, mutant: Mutant) -> None:
        rt.live[inst] += [w for s in mutant.make(inst, lab).values() for w in s.split()[1:]]

    monkeypatch.setattr(labtest, "_mutate", mutate)
    data = lab_with_stretch()
    lab = type(data)(**{**data.__dict__, "survives": {"declared@a": "it may", "ghost@a": "?"}})
    result = labtest.run(lab, only=["killed@a", "survives@a", "declared@a", "n-a@a"])
    got = {r.case.name: (r.ok, labtest.outcome(r)) for r in result.results}
    assert got == {"mutant: killed@a": (True, "killed"),
                   "mutant: survives@a": (False, "SURVIVED"),
                   "mutant: declared@a": (True, "survived (declared)"),
                   "mutant: n-a@a": (True, "does not apply")}
    assert not result.ok
    full = labtest.run(lab)
    assert full.unknown_survivors == ["ghost@a"] and not full.ok
    text = view.table(full, color=False)
    assert "declared@a survives, as the lab says: it may" in text
    assert "n-a@a does not apply: the solution does it already" in text
    assert "changes nothing checked: every check passed" in text
    assert "survives: ghost@a: no mutant of this lab has that name" in text
    mutants = {m["mutant"]: m for m in view.as_json(full)["mutants"]}
    assert mutants["killed@a"]["killed"] and mutants["killed@a"]["failed"] == ["web"]
    assert mutants["declared@a"]["survives"] == "it may"
