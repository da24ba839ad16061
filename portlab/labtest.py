"""`portlab test LAB`: is a lab right? Its own declarations, held to real traffic.

A lab declares what its checks say in three situations: untouched
(`untouched.fails`), solved (`solution`: every check passes) and after each
known wrong solution (`wrong_solutions[].fails`). Each of these is a *case*,
run on a fresh instance of its own: start the lab, apply the case's scripts,
run the checks, compare the checks that failed with the declared ones, remove
the instance. Cases run side by side, bounded by the cores (each instance has
subnets of its own). The test suite runs the shipped labs through this very
code; a trainer runs it on a lab of their own (PORTLAB_LABS_PATH).

A case is **as declared** only when exactly the declared checks fail and none
could not be judged: a check that could not observe is a mismatch, never a
pass. Stretch checks (`stretch: true` on the check or its task) are optional
work: a wrong solution is judged on the other checks, and on the stretch
checks its `fails` names.

Then the mutants (portlab.mutants): the reference solution plus one plausible
mistake or cheat each, made from what the lab is. A mutant is *killed* when
at least one check fails; one that survives is a wrong setup the lab's checks
would pass, and a mismatch, unless the lab declares why it survives
(`survives: {MUTANT: reason}`).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from portlab import runtime
from portlab.errors import PortlabError, RuntimeProblem, UsageError
from portlab.model.types import Lab
from portlab.mutants import Mutant, NotApplicable, battery
from portlab.probes.runner import Report
from portlab.progress import Progress, Quiet

UNTOUCHED = "untouched"
SOLUTION = "solution"
WRONG = "wrong: "  # a wrong solution's case is called "wrong: NAME"
MUTANT = "mutant: "  # a mutant's case is called "mutant: NAME"


@dataclass(frozen=True)
class Case:
    name: str  # "untouched", "solution", "wrong: NAME" or "mutant: NAME"
    scripts: dict[str, str]  # node -> script (templates), applied after the lab's own setup
    expected: tuple[str, ...]  # the checks declared to fail, in the lab's check order
    stretch_optional: bool = False  # a wrong solution: unnamed stretch checks do not count
    mutant: Mutant | None = None  # a mutant: applied after `scripts`; killed by any failure
    survives: str = ""  # a mutant the lab declares to survive: why
    says: dict[str, str] = field(default_factory=dict)  # check -> words its feedback must hold


@dataclass
class CaseResult:
    case: Case
    failed: list[str] = field(default_factory=list)  # checks that failed (verdicts)
    errors: list[str] = field(default_factory=list)  # checks that could not be judged
    ignored: list[str] = field(default_factory=list)  # stretch checks failed, not counted
    problem: str = ""  # why the case could not run at all (the lab did not start, ...)
    not_applicable: str = ""  # a mutant that cannot be made on the solved instance: why
    unsaid: list[str] = field(default_factory=list)  # "CHECK: words" its feedback lacked
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        if self.problem or self.errors:
            return False
        if self.case.mutant is not None:
            return self.killed or bool(self.case.survives) or bool(self.not_applicable)
        return tuple(self.failed) == self.case.expected and not self.unsaid

    @property
    def killed(self) -> bool:
        """A mutant's case: some check failed, so the lab's checks caught the mistake."""
        return bool(self.failed) and not self.problem and not self.errors

    def unexpected(self) -> list[str]:
        """Checks that failed although the case did not declare them."""
        return [c for c in self.failed if c not in self.case.expected]

    def missing(self) -> list[str]:
        """Checks declared to fail that passed."""
        return [c for c in self.case.expected if c not in self.failed and c not in self.errors]


@dataclass
class LabTest:
    lab: str
    results: list[CaseResult]
    seconds: float = 0.0
    jobs: int = 1
    unknown_survivors: list[str] = field(default_factory=list)  # `survives:` naming no mutant

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results) and \
            not self.unknown_survivors

    def mismatches(self) -> list[CaseResult]:
        return [r for r in self.results if not r.ok]


def stretch_checks(lab: Lab) -> set[str]:
    """The lab's optional checks (`stretch: true`, or of a stretch task: the loader says)."""
    return {c.id for c in lab.checks if c.stretch}


def mutant_cases(lab: Lab) -> list[Case]:
    """A case for each mutant of the battery that applies to the lab."""
    return [Case(MUTANT + m.name, {k: v for k, v in lab.solution.items() if k not in m.skip},
                 (), mutant=m, survives=lab.survives.get(m.name, ""))
            for m in battery(lab)]


def unknown_survivors(lab: Lab) -> list[str]:
    """Names in the lab's `survives:` that name no mutant of its battery."""
    names = {m.name for m in battery(lab)}
    return [name for name in lab.survives if name not in names]


def cases(lab: Lab, only: Sequence[str] = (), mutants: bool = True) -> list[Case]:
    """The lab's cases in order: untouched, solution, each wrong solution, each mutant (or
    just `only`)."""
    order = [c.id for c in lab.checks]

    def in_order(ids: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(ids, key=order.index))

    every = [Case(UNTOUCHED, {}, in_order(lab.untouched_fails)),
             Case(SOLUTION, dict(lab.solution), ())]
    every += [Case(WRONG + w.name, dict(w.apply), in_order(w.fails), stretch_optional=True,
                   says=dict(w.says))
              for w in lab.wrong_solutions]
    if mutants or only:
        every += mutant_cases(lab)
    if not only:
        return every
    known = {c.name: c for c in every} | {c.name.split(": ", 1)[1]: c for c in every
                                          if c.name.startswith((WRONG, MUTANT))}
    unknown = [n for n in only if n not in known]
    if unknown:
        names = ", ".join([UNTOUCHED, SOLUTION] + [w.name for w in lab.wrong_solutions]
                          + [c.name[len(MUTANT):] for c in every if c.mutant])
        raise UsageError(f"lab '{lab.name}' has no case {', '.join(map(repr, unknown))}",
                         hint=f"its cases: {names}")
    picked = {known[n].name for n in only}
    return [c for c in every if c.name in picked]


def outcome(result: CaseResult) -> str:
    """A case's result in a word or two."""
    if result.not_applicable:
        return "does not apply"
    if result.case.mutant is not None and not result.problem and not result.errors:
        return "killed" if result.killed else (
            "survived (declared)" if result.case.survives else "SURVIVED")
    return "as declared" if result.ok else "NOT as declared"


def default_jobs() -> int:
    """Cases at once: one per core. Each is a whole lab of containers probing each other."""
    return max(1, os.cpu_count() or 1)


def run_case(lab: Lab, case: Case, *, instance: str | None = None,
             progress: Progress | None = None,
             started: Callable[[str], None] | None = None) -> CaseResult:
    """One case on a fresh instance of its own, removed afterwards whatever happens."""
    name = instance or f"test-{lab.name[:24]}-{secrets.token_hex(3)}"
    result = CaseResult(case)
    begin = time.monotonic()
    try:
        if started is not None:
            started(name)
        inst = runtime.up(lab, name, progress or Quiet())
        if case.scripts:
            runtime.run_scripts(inst, lab, case.scripts)
        if case.mutant is not None:
            try:
                _mutate(inst, lab, case.mutant)
            except NotApplicable as exc:
                result.not_applicable = str(exc)
                return result
        report = runtime.run_checks(lab, inst, explained=bool(case.says))
        failed, result.errors = report.failed_ids(), report.errored_ids()
        says = {check: inst.binding(lab).render(("wrong_solutions",), words)
                for check, words in case.says.items()}
        result.unsaid = [f"{check}: {words!r}; {_last(report, check)}"
                         for check, words in says.items()
                         if check in failed and _plain(words) not in feedback(report, check)]
        if case.stretch_optional:
            optional = stretch_checks(lab) - set(case.expected)
            result.ignored = [c for c in failed if c in optional]
            failed = [c for c in failed if c not in optional]
        result.failed = failed
    except PortlabError as exc:
        result.problem = exc.message
    finally:
        try:
            runtime.down(name, Quiet())
        except PortlabError as exc:
            result.problem = result.problem or f"could not remove instance {name}: {exc.message}"
        result.seconds = time.monotonic() - begin
    return result


def feedback(report: Report, check: str) -> str:
    """All a failed check tells the learner, in plain lower-case words: what came back and what
    it means, the hint for what was seen, and the learner's rules it shows."""
    r = report.result(check)
    parts = [r.hint, *(p.got for p in r.probes), *(p.why for p in r.probes)]
    if r.explanation is not None:
        for chain in r.explanation.chains:
            parts += [rule.text for rule in chain.rules]
            parts += [f"matched rule {rule.number} of {chain.table} {chain.name}"
                      for rule in chain.rules if rule.matched]
    return _plain(" ".join(parts))


def _last(report: Report, check: str) -> str:
    """What the check's failing probe sent and saw, for a mismatch's message."""
    probe = report.result(check).probes[-1]
    return f"its {probe.sent} to {probe.target} got: {probe.got[:200]}; so: {probe.why[:200]}"


def _plain(text: str) -> str:
    """Lower case, one space between words, no backticks (inline code reads the same)."""
    return " ".join(text.lower().replace("`", "").split())


def _mutate(inst: runtime.Instance, lab: Lab, mutant: Mutant) -> None:
    """Make the mutant's mistake on the solved instance."""
    scripts = mutant.make(inst, lab)
    if not scripts:
        raise RuntimeProblem(f"mutant {mutant.name} found nothing to change on this instance")
    for node, script in scripts.items():
        done = inst.exec(node, ["sh", "-e", "-c", script])
        if done.exit_code != 0:
            raise RuntimeProblem(f"mutant {mutant.name} could not be made on {node} (exit "
                                 f"{done.exit_code}): "
                                 + (done.stderr or done.stdout).strip()[-400:])


def run(lab: Lab, *, jobs: int | None = None, only: Sequence[str] = (),
        progress: Progress | None = None, mutants: bool = True) -> LabTest:
    """Every case of the lab (or `only` these), `jobs` at a time; results in case order.

    Interrupted (Ctrl-C), it starts no further case and removes the instances of
    the running ones before it passes the interruption on."""
    [result] = run_many([lab], jobs=jobs, only=only, progress=progress, mutants=mutants)
    return result


def run_many(labs: Sequence[Lab], *, jobs: int | None = None, only: Sequence[str] = (),
             progress: Progress | None = None, mutants: bool = True) -> list[LabTest]:
    """The cases of several labs in one pool, `jobs` at a time (none waits for the slowest
    case of another lab); a LabTest per lab, in the labs' order."""
    progress = progress or Quiet()
    todo = [(lab, case) for lab in labs for case in cases(lab, only, mutants)]
    workers = max(1, min(jobs or default_jobs(), len(todo)))
    results: dict[tuple[str, str], CaseResult] = {}
    seconds: dict[str, float] = {}
    live: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    begin = time.monotonic()
    runtime.ensure_image(progress)  # once, before the cases start side by side

    def started(name: str) -> None:
        with lock:
            live.add(name)

    def work(lab: Lab, case: Case) -> None:
        if stop.is_set():
            return
        result = run_case(lab, case, started=started)
        with lock:
            results[(lab.name, case.name)] = result
            seconds[lab.name] = time.monotonic() - begin
            progress.detail(f"{len(results)}/{len(todo)} cases done; "
                            + (f"{lab.name}: " if len(labs) > 1 else "")
                            + f"{case.name}: {outcome(result)}")

    names = ", ".join(f"'{lab.name}'" for lab in labs)
    with progress.phase(f"testing lab{'s' if len(labs) > 1 else ''} {names}: {len(todo)} "
                        f"cases, each on a fresh instance, {workers} at a time"):
        pool = ThreadPoolExecutor(workers)
        futures = [pool.submit(work, lab, case) for lab, case in todo]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            with lock:
                leftovers = sorted(live)
            for name in leftovers:  # the running cases' commands end when their nodes go
                try:
                    runtime.down(name, Quiet())
                except PortlabError:
                    pass
            pool.shutdown(wait=True)
            raise
        pool.shutdown(wait=True)
    return [LabTest(lab.name, [results[(lab.name, c.name)] for c in cases(lab, only, mutants)
                               if (lab.name, c.name) in results],
                    seconds.get(lab.name, 0.0), workers,
                    unknown_survivors(lab) if mutants and not only else [])
            for lab in labs]
