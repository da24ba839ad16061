"""Every lab, on real containers, through `portlab test`'s own code (portlab.labtest).

Each lab declares in its lab.yaml which checks fail when untouched
(`untouched.fails`) and which checks each known wrong solution breaks
(`wrong_solutions[].fails`); the solution passes every check; and every mutant of the
battery (the solution plus one mistake or cheat) fails a check, or the lab says why it may
pass. These tests hold every lab to its word, so a new lab is covered the moment it is
added. The cases of all labs run as one `portlab test --all`, each on a fresh instance,
started at the beginning of the session beside the other tests (labpool.py); these tests,
the last of the integration tests, read its results.
"""

from __future__ import annotations

from typing import Any

import pytest

from portlab import core, labtest
from tests.integration.labpool import LabPool, describe

LABS = core.labs()


@pytest.fixture(scope="module")
def tested(lab_pool: LabPool | None) -> dict[str, dict[str, Any]]:
    assert lab_pool is not None, "the lab pool starts whenever test_labs.py runs"
    return lab_pool.results()


@pytest.mark.parametrize("lab_name", [lab.name for lab in LABS])
def test_lab_does_what_it_declares(tested: dict[str, dict[str, Any]], lab_name: str) -> None:
    lab = core.get_lab(lab_name)
    assert lab.untouched_fails, "every lab declares which checks fail before any work"
    assert len(lab.wrong_solutions) >= 2, "every lab has at least two known wrong solutions"
    result = tested[lab_name]
    ran = [c["case"] for c in result["cases"]] + [labtest.MUTANT + m["mutant"]
                                                  for m in result["mutants"]]
    assert ran == [c.name for c in labtest.cases(lab)]
    assert result["ok"], describe(result)
