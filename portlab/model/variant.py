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
# Who started a CI run: the student when they push, but the instructor when they push a fix
# or start the workflow by hand. Only the fallback.
ACTOR_VARIABLES = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN")
STUDENT_VARIABLE = "PORTLAB_STUDENT"
# The assignment's prefix: GitHub Classroom names a student's repository
# `<assignment-prefix>-<login>`; the starter's workflow sets it.
ASSIGNMENT_VARIABLE = "PORTLAB_ASSIGNMENT"
SALT_VARIABLE = "PORTLAB_COURSE_SALT"


@dataclass(frozen=True)
class Variant:
    student: str
    params: dict[str, ParamValue] = field(default_factory=dict)  # the varied ones
    subnets: dict[str, IPv4Network] = field(default_factory=dict)  # every network's
    key_seed: str = ""  # what the variant's WireGuard keys are derived from


def repository_name() -> str:
    """The CI run's repository, without its owner: GitHub's $GITHUB_REPOSITORY, GitLab's
    $CI_PROJECT_NAME; empty outside CI."""
    github = os.environ.get("GITHUB_REPOSITORY", "")
    return github.rsplit("/", 1)[-1] if github else os.environ.get("CI_PROJECT_NAME", "")


def find_student(given: str | None = None) -> tuple[str, str]:
    """The student and where the ID came from, in words. In this order: `given`;
    $PORTLAB_STUDENT; the repository's name after `$PORTLAB_ASSIGNMENT-` (GitHub Classroom's
    `<assignment-prefix>-<login>`); last, who started the CI run ($GITHUB_ACTOR,
    $GITLAB_USER_LOGIN). Normalised to lowercase: GitHub and GitLab names are
    case-insensitive."""
    raw, where = given, "given"
    if raw is None and os.environ.get(STUDENT_VARIABLE):
        raw, where = os.environ[STUDENT_VARIABLE], f"${STUDENT_VARIABLE}"
    prefix = os.environ.get(ASSIGNMENT_VARIABLE, "").strip()
    repo = repository_name()
    if raw is None and prefix and repo.lower().startswith(prefix.lower() + "-") \
            and len(repo) > len(prefix) + 1:
        raw, where = repo[len(prefix) + 1:], f"the repository's name, {repo}"
        actor = next((os.environ[v] for v in ACTOR_VARIABLES if os.environ.get(v)), "")
        if actor and repo.lower().endswith("-" + actor.lower()) and \
                raw.lower() != actor.lower():
            where += (f"; but it ends in '-{actor}', who started this run: is the "
                      f"assignment's prefix '{repo[:-len(actor) - 1]}' rather than "
                      f"'{prefix}' (${ASSIGNMENT_VARIABLE})?")
    if raw is None:
        found = next((v for v in ACTOR_VARIABLES if os.environ.get(v)), None)
        if found is not None:
            raw = os.environ[found]
            where = f"${found}, who started this run"
            if prefix and repo:
                where += f" (the repository's name, {repo}, does not start with '{prefix}-')"
    if raw is None:
        raise UsageError("which student? none was given and CI names none",
                         hint=f"give --student ID (or set ${STUDENT_VARIABLE}); in GitHub "
                              f"Classroom, ${ASSIGNMENT_VARIABLE} names the assignment's "
                              "prefix and the repository's name the student")
    text = raw.strip()
    if not STUDENT.fullmatch(text):
        raise UsageError(f"'{printable(raw)}' is not a student ID portlab can use",
                         hint="1-100 letters, digits and . _ @ + -, starting with a letter or "
                              "digit")
    return text.lower(), printable(where)


def student_id(given: str | None = None) -> str:
    """The student (find_student, without where the ID came from)."""
    return find_student(given)[0]


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


def variant_lab(name: str, student: str, salt: str = "") -> tuple[Lab, Variant]:
    """The lab of `student`'s variant (its params applied), and the variant."""
    from portlab.model import catalog  # the catalog reads labs; a variant is of one

    base = catalog.find(name)
    lab = catalog.find(name, derive(base, student, salt).params)
    return lab, derive(lab, student, salt)
