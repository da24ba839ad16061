"""Every lab, on real containers: untouched it fails, solved it passes, wrong solutions fail.

Each lab declares in its lab.yaml which checks fail when untouched
(`untouched.fails`) and which checks each known wrong solution breaks
(`wrong_solutions[].fails`); these tests hold every lab to its word, so a
new lab is covered the moment it is added.
"""

from __future__ import annotations

import pytest

from portlab import core, runtime
from portlab.model.types import Lab
from portlab.runtime import run_checks

LABS = core.labs()
WRONG = [(lab.name, wrong.name) for lab in LABS for wrong in lab.wrong_solutions]


def _failed(lab: Lab, inst: runtime.Instance) -> list[str]:
    return run_checks(lab, inst).failed_ids()


def _instance(name: str) -> str:
    return f"t-{name}"[:40]


@pytest.mark.parametrize("lab_name", [lab.name for lab in LABS])
def test_untouched_lab_fails_the_declared_checks(start_lab, lab_name: str) -> None:
    lab = core.get_lab(lab_name)
    assert lab.untouched_fails, "every lab declares which checks fail before any work"
    inst = start_lab(lab, _instance(f"{lab_name}-untouched"))
    assert _failed(lab, inst) == list(lab.untouched_fails)


@pytest.mark.parametrize("lab_name", [lab.name for lab in LABS])
def test_reference_solution_passes_every_check(start_lab, lab_name: str) -> None:
    lab = core.get_lab(lab_name)
    inst = start_lab(lab, _instance(f"{lab_name}-solved"))
    runtime.run_scripts(inst, lab, lab.solution)
    report = run_checks(lab, inst)
    assert report.failed_ids() == [], [
        (r.id, [(p.got, p.why) for p in r.probes]) for r in report.results if not r.passed]


@pytest.mark.parametrize(("lab_name", "wrong_name"), WRONG)
def test_wrong_solution_fails_the_check_it_breaks(start_lab, lab_name: str,
                                                  wrong_name: str) -> None:
    lab = core.get_lab(lab_name)
    wrong = next(w for w in lab.wrong_solutions if w.name == wrong_name)
    inst = start_lab(lab, _instance(f"{lab_name}-{wrong_name}"))
    runtime.run_scripts(inst, lab, wrong.apply)
    assert _failed(lab, inst) == list(wrong.fails)
