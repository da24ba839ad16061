"""Every lab, on real containers, through `portlab test`'s own code (portlab.labtest).

Each lab declares in its lab.yaml which checks fail when untouched
(`untouched.fails`) and which checks each known wrong solution breaks
(`wrong_solutions[].fails`); the solution passes every check. These tests
hold every lab to its word, so a new lab is covered the moment it is added.
A lab's cases run side by side, one per core, each on a fresh instance.
"""

from __future__ import annotations

import pytest

from portlab import core, labtest
from portlab.views import labtest as view

LABS = core.labs()


@pytest.mark.parametrize("lab_name", [lab.name for lab in LABS])
def test_lab_does_what_it_declares(node_image: str, lab_name: str) -> None:
    lab = core.get_lab(lab_name)
    assert lab.untouched_fails, "every lab declares which checks fail before any work"
    assert len(lab.wrong_solutions) >= 2, "every lab has at least two known wrong solutions"
    result = labtest.run(lab)
    assert [r.case.name for r in result.results] == [c.name for c in labtest.cases(lab)]
    assert result.ok, view.table(result, color=False)
