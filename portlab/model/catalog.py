"""Where labs are found: $PORTLAB_LABS_PATH (colon-separated), then the built-in ones.

A lab is a folder with a `lab.yaml`; the first folder of a name wins. One
lab that does not load (a trainer's work in progress, a typo) never hides
the others: `scan` returns the good ones and, apart, the broken ones with
their error, which `portlab list` names and `portlab show` of that lab
reports in full.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portlab.errors import LabError, UsageError, printable
from portlab.model.loader import load_file
from portlab.model.types import DIFFICULTIES, Lab


def labs_dirs() -> list[Path]:
    """Where labs are looked up, in order."""
    dirs: list[Path] = []
    for part in os.environ.get("PORTLAB_LABS_PATH", "").split(os.pathsep):
        if part:
            dirs.append(Path(part).expanduser())
    dirs.append(builtin_labs_dir())
    return dirs


def builtin_labs_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_data" / "labs"
    return packaged if packaged.is_dir() else here.parent / "labs"


def available() -> dict[str, Path]:
    """Lab name -> lab.yaml, first directory wins."""
    found: dict[str, Path] = {}
    for base in labs_dirs():
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            lab_file = child / "lab.yaml"
            if lab_file.is_file() and child.name not in found:
                found[child.name] = lab_file
    return found


@dataclass(frozen=True)
class Broken:
    """A lab folder whose lab.yaml does not load."""

    name: str
    file: str
    error: LabError


@dataclass
class Catalog:
    labs: list[Lab] = field(default_factory=list)  # in the suggested order
    broken: list[Broken] = field(default_factory=list)


def scan() -> Catalog:
    """Every lab that can be found: the ones that load, and apart the ones that do not."""
    out = Catalog()
    for name, path in available().items():
        try:
            out.labs.append(load_file(path))
        except LabError as exc:
            out.broken.append(Broken(name, str(path), exc))
    out.labs.sort(key=lambda lab: (lab.order, DIFFICULTIES.index(lab.difficulty), lab.name))
    return out


def find(name: str, params: Mapping[str, Any] | None = None, *, strict: bool = True) -> Lab:
    """The lab called `name`, with `params` applied (see portlab.model.params.apply for
    `strict`). A lab that does not load raises its LabError; an unknown name lists the labs
    there are."""
    labs = available()
    if name not in labs:
        known = ", ".join(sorted(labs)) or "(none found)"
        close = difflib.get_close_matches(name, list(labs), n=1, cutoff=0.6)
        guess = f" Did you mean '{close[0]}'?" if close else ""
        raise UsageError(f"there is no lab called '{printable(name)}'.{guess} Labs: {known}",
                         hint="`portlab list` shows them with a line each")
    return load_file(labs[name], params, strict=strict)
