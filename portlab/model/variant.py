"""Per-student variants: the lab a student gets, derived from their ID (and a course salt).

A lab's `vary:` says what differs; here the student ID, the course salt and
the lab's name fix each varied param and each varied network's subnet, the
same way every time (a hash; no state). The variant is what `portlab show
LAB --student ID` shows, what `portlab up LAB --student ID` starts and what
`portlab grade` grades: the same addresses and ports all three times.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from portlab.errors import UsageError, printable
from portlab.model import allocate
from portlab.model.types import Lab, ParamValue, Range

STUDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
# Where CI says who pushed: GitHub Actions, GitLab CI; then portlab's own.
STUDENT_VARIABLES = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "PORTLAB_STUDENT")
SALT_VARIABLE = "PORTLAB_COURSE_SALT"


@dataclass(frozen=True)
class Variant:
    student: str
    params: dict[str, ParamValue] = field(default_factory=dict)  # the varied ones
    subnets: dict[str, IPv4Network] = field(default_factory=dict)  # every network's
    key_seed: str = ""  # what the variant's WireGuard keys are derived from


def student_id(given: str | None = None) -> str:
    """The student: given, or what CI provides, or $PORTLAB_STUDENT. Normalised (lowercase:
    GitHub and GitLab names are case-insensitive)."""
    raw = given
    if raw is None:
        raw = next((os.environ[v] for v in STUDENT_VARIABLES if os.environ.get(v)), None)
    if raw is None:
        raise UsageError("which student? none was given and CI names none",
                         hint="give --student ID (or set $PORTLAB_STUDENT); in CI, "
                              "$GITHUB_ACTOR or $GITLAB_USER_LOGIN names them")
    text = raw.strip()
    if not STUDENT.fullmatch(text):
        raise UsageError(f"'{printable(raw)}' is not a student ID portlab can use",
                         hint="1-100 letters, digits and . _ @ + -, starting with a letter or "
                              "digit")
    return text.lower()


def course_salt(given: str | None = None) -> str:
    return given if given is not None else os.environ.get(SALT_VARIABLE, "")


def _draw(salt: str, lab: str, student: str, what: str) -> int:
    digest = hashlib.sha256(f"portlab variant\0{salt}\0{lab}\0{student}\0{what}".encode())
    return int.from_bytes(digest.digest()[:8], "big")


def derive(lab: Lab, student: str, salt: str = "") -> Variant:
    """The variant of `lab` (loaded with its own params) for `student`."""
    params: dict[str, ParamValue] = {}
    for name, rule in lab.vary.params.items():
        n = _draw(salt, lab.name, student, f"param {name}")
        if isinstance(rule, Range):
            params[name] = rule.low + n % (rule.high - rule.low + 1)
        else:
            params[name] = rule[n % len(rule)]
    preferred = lab.preferred_subnets()
    fixed = [net for name, net in preferred.items() if name not in lab.vary.networks]
    subnets: dict[str, IPv4Network] = {}
    for net in lab.networks:
        within = lab.vary.networks.get(net.name)
        if within is None:
            subnets[net.name] = preferred[net.name]
            continue
        count = 2 ** (net.prefix - within.prefixlen)
        start = _draw(salt, lab.name, student, f"network {net.name}")
        taken = fixed + list(subnets.values()) + allocate.DOCKER_DEFAULT_POOLS
        for k in range(count):
            base = int(within.network_address) + ((start + k) % count) * 2 ** (32 - net.prefix)
            candidate = IPv4Network((base, net.prefix))
            if not any(candidate.overlaps(t) for t in taken):
                subnets[net.name] = candidate
                break
        else:
            raise UsageError(f"lab '{lab.name}': no /{net.prefix} left in {within} for network "
                             f"'{net.name}'")
    seed = f"{_draw(salt, lab.name, student, 'keys'):016x}"
    return Variant(student, params, {name: subnets[name] for name in preferred}, seed)
