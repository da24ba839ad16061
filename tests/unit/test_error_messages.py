"""Golden error messages: every broken lab in tests/errors gives exactly the message beside it.

Each `tests/errors/NAME.yaml` is a lab with one mistake; `NAME.txt` is the
whole message portlab prints for it (file, line, key and words), and
`NAME.params.yaml`, where there is one, holds params given to the lab (as
`--param` would). A change of wording is thus a visible diff in review.
After a deliberate change, rewrite the expected files with

    PORTLAB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_error_messages.py

and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from portlab.errors import PortlabError
from portlab.model.loader import parse

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in (ROOT / "tests" / "errors").glob("*.yaml")
               if not p.name.endswith(".params.yaml"))


def test_there_are_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_broken_lab_gives_the_expected_message(case: Path) -> None:
    extra = case.with_name(case.stem + ".params.yaml")
    overrides = yaml.safe_load(extra.read_text()) if extra.exists() else None
    with pytest.raises(PortlabError) as info:
        parse(case.read_text(), str(case.relative_to(ROOT)), overrides=overrides)
    got = str(info.value).rstrip("\n") + "\n"
    expected = case.with_suffix(".txt")
    if os.environ.get("PORTLAB_UPDATE_GOLDEN") == "1":
        expected.write_text(got)
    assert expected.exists(), f"no {expected.name}: run with PORTLAB_UPDATE_GOLDEN=1"
    assert got == expected.read_text()
