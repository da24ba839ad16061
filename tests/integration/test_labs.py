"""Every lab, on real containers, through `portlab test`'s own code (portlab.labtest).

Each lab declares in its lab.yaml which checks fail when untouched
(`untouched.fails`) and which checks each known wrong solution breaks
(`wrong_solutions[].fails`); the solution passes every check; and every mutant of the
battery (the solution plus one mistake or cheat) fails a check, or the lab says why it may
pass. These tests hold every lab to its word, so a new lab is covered the moment it is
added. The cases of all labs run in one pool, each on a fresh instance, two per core: a
case mostly waits (for its nodes, for a probe's timeout), so that many keep both cores busy.
"""

from __future__ import annotations

import os

import pytest

from portlab import core, labtest
from portlab.views import labtest as view

LABS = core.labs()
JOBS = 2 * (os.cpu_count() or 1)


@pytest.fixture(scope="module")
def tested(node_image: str) -> dict[str, labtest.LabTest]:
    return {t.lab: t for t in labtest.run_many(LABS, jobs=JOBS)}


@pytest.mark.parametrize("lab_name", [lab.name for lab in LABS])
def test_lab_does_what_it_declares(tested: dict[str, labtest.LabTest], lab_name: str) -> None:
    lab = core.get_lab(lab_name)
    assert lab.untouched_fails, "every lab declares which checks fail before any work"
    assert len(lab.wrong_solutions) >= 2, "every lab has at least two known wrong solutions"
    result = tested[lab_name]
    assert [r.case.name for r in result.results] == [c.name for c in labtest.cases(lab)]
    assert result.ok, view.table(result, color=False)
