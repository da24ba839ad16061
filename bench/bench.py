#!/usr/bin/env python3
"""portlab's benchmark: how long labs take, next to the same work done by hand.

Every figure is a median over several runs with its spread (min-max), and
beside it a floor: the same work without portlab (plain Compose on the same
rendered file, the same probes by `docker exec`, `docker rm` and
`docker network rm`), so the overhead portlab adds is visible. Nothing here
asserts; it prints figures (and the issue's targets beside them) and, with
--json, writes them.

    bench/bench.py                          warm up/check/down of every lab, 5 runs each
    bench/bench.py --labs forwarding,vpn --runs 3
    bench/bench.py --concurrent 1,10,25,50  N forwarding labs at once
    bench/bench.py --cold                   cold start: both image layers built offline
    bench/bench.py --grade 50               a class of 50 forwarding submissions graded at once

It works in its own scope (PORTLAB_SCOPE=bench), builds cold images under
scratch repositories (portlab-bench/...), and removes what it starts. Run it
on a quiet machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTLAB_SCOPE", "bench")

from portlab import core, runtime  # noqa: E402
from portlab.backend.base import ExecResult, Stream  # noqa: E402
from portlab.backend.docker import client as docker_api  # noqa: E402
from portlab.backend.docker import compose, image, instances, render  # noqa: E402
from portlab.errors import PortlabError  # noqa: E402
from portlab.model import allocate  # noqa: E402
from portlab.model.context import Binding  # noqa: E402
from portlab.model.plan import Plan, new_token  # noqa: E402
from portlab.model.types import Lab  # noqa: E402
from portlab.probes.runner import resolve, run_probe  # noqa: E402
from portlab.progress import Quiet  # noqa: E402
from portlab.views.progress import TerminalProgress  # noqa: E402

PORTLAB = [sys.executable, "-m", "portlab"]
TARGETS = {"up_ratio": 1.3, "check_s": 2.0, "down_s": 2.0}


def run(argv: list[str], *, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n"
                         f"{proc.stdout}\n{proc.stderr}")
    return proc


def timed(fn: Callable[[], Any]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:5.2f}s ({s['min']:.2f}-{s['max']:.2f})"


def machine() -> dict[str, Any]:
    info = docker_api.client().info()
    c = compose.detect()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "kernel": platform.release(),
        "docker": info.get("ServerVersion"),
        "storage_driver": info.get("Driver"),
        "compose": f"{c.command} {c.version}",
        "python": platform.python_version(),
    }


def compose_argv(plan: Plan, path: Path) -> list[str]:
    return [*compose.detect().argv, "-p", compose.project_name(plan.instance), "-f", str(path)]


# --- one lab, warm -------------------------------------------------------------------------------


def bench_lab(lab_name: str, runs: int) -> dict[str, Any]:
    lab = core.get_lab(lab_name)
    tag = image.ensure(TerminalProgress(sys.stderr))
    instance = f"bench-{lab_name}"
    times: dict[str, list[float]] = {k: [] for k in
                                     ("up", "check", "check_solved", "down", "floor_up",
                                      "floor_check", "floor_check_solved", "floor_down")}
    for _ in range(runs):
        # portlab, as a learner types it (a new process each time, imports included)
        times["up"].append(timed(lambda: run([*PORTLAB, "up", lab_name, "-i", instance, "-q"])))
        # check twice: the untouched lab (probes that must wait for "nothing came back" wait
        # their timeout) and the solved one (every answer arrives)
        times["check"].append(timed(lambda: run([*PORTLAB, "check", "-i", instance, "--json"],
                                                check=False)))
        run([*PORTLAB, "solve", lab_name, "-i", instance])
        times["check_solved"].append(timed(lambda: run(
            [*PORTLAB, "check", "-i", instance, "--json"])))  # must pass: check=True
        times["down"].append(timed(lambda: run([*PORTLAB, "down", "-i", instance])))
        # the floor: the same rendered file with plain Compose, the same probes with docker exec
        plan = runtime.plan(lab, instance, tag)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "compose.yaml"
            path.write_text(render.compose(plan))
            argv = compose_argv(plan, path)
            times["floor_up"].append(timed(lambda: run([*argv, "up", "-d"])))  # noqa: B023
            inst = runtime.instances()[instance]
            runtime.wait_ready(inst, Quiet())
            times["floor_check"].append(timed(lambda: _probes_by_hand(lab, inst)))  # noqa: B023
            runtime.run_scripts(inst, lab, lab.solution)
            times["floor_check_solved"].append(
                timed(lambda: _probes_by_hand(lab, inst)))  # noqa: B023
            times["floor_down"].append(timed(lambda: _down_by_hand(inst)))  # noqa: B023
            run([*argv, "down", "-v"], check=False)
    return {"lab": lab_name, **{k: summary(v) for k, v in times.items()}}


def _probes_by_hand(lab: Lab, inst: runtime.Instance) -> None:
    """Every probe of the lab, one after another, each command it runs on a node as a plain
    `docker exec` (the same portlab-probe calls, without portlab's process, API client or
    parallel checks)."""
    class ByHand:  # a NodeRunner that is plain `docker exec`
        def exec(self, node: str, argv: Sequence[str]) -> ExecResult:
            proc = subprocess.run(["docker", "exec", inst.node(node).ref, *argv],
                                  capture_output=True, text=True)
            return ExecResult(proc.returncode, proc.stdout, proc.stderr)

        def stream(self, node: str, argv: Sequence[str]) -> Stream:
            raise NotImplementedError

    binding = inst.binding(lab)
    for check in lab.checks:
        for probe in check.probes:
            run_probe(resolve(probe, binding, ByHand()))


def _down_by_hand(inst: runtime.Instance) -> None:
    subprocess.run(["docker", "rm", "-f", *[c.ref for c in inst.nodes.values()]],
                   capture_output=True)
    networks = [n.engine_name for n in inst.info.networks.values()]
    subprocess.run(["docker", "network", "rm", *networks], capture_output=True)


def print_lab(r: dict[str, Any]) -> None:
    print(f"\n{r['lab']}  (warm: node image present; median (min-max) of {r['up']['runs']:.0f})")
    names = {"up": "up", "check": "check (untouched)", "check_solved": "check (solved)",
             "down": "down"}
    for key, name in names.items():
        ratio = r[key]["median"] / r[f"floor_{key}"]["median"]
        print(f"  {name:<17} portlab {fmt(r[key])}   by hand {fmt(r['floor_' + key])}   "
              f"x{ratio:.2f}")
    up_ratio = r["up"]["median"] / r["floor_up"]["median"]
    verdicts = [
        f"up x{up_ratio:.2f} of compose up (target <= x{TARGETS['up_ratio']}): "
        + ("met" if up_ratio <= TARGETS["up_ratio"] else "NOT met"),
        *(f"check {what} {r[key]['median']:.2f}s (target < {TARGETS['check_s']:.0f}s): "
          + ("met" if r[key]["median"] < TARGETS["check_s"] else "NOT met")
          for key, what in (("check", "untouched"), ("check_solved", "solved"))),
        f"down {r['down']['median']:.2f}s (target < {TARGETS['down_s']:.0f}s): "
        + ("met" if r["down"]["median"] < TARGETS["down_s"] else "NOT met"),
    ]
    print("  targets: " + "; ".join(verdicts))


# --- many labs at once ---------------------------------------------------------------------------


def memory_of(container_id: str) -> int:
    """Resident memory (rss, no page cache) of a container, from its cgroup (v1 or v2)."""
    for path, key in ((f"/sys/fs/cgroup/memory/docker/{container_id}/memory.stat", "total_rss"),
                      (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.stat",
                       "anon")):
        try:
            for line in Path(path).read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except OSError:
            continue
    stats = docker_api.client().api.stats(container_id, stream=False)
    return int(stats.get("memory_stats", {}).get("usage", 0))


def in_parallel(fn: Callable[[str], Any], items: list[str]) -> tuple[float, list[Any]]:
    start = time.monotonic()
    with ThreadPoolExecutor(max(1, len(items))) as pool:
        out = list(pool.map(fn, items))
    return time.monotonic() - start, out


def bench_concurrent(n: int, lab_name: str = "forwarding") -> dict[str, Any]:
    """N `portlab up` started at the same moment, then solve+check of all, then down of all."""
    image.ensure(TerminalProgress(sys.stderr))
    names = [f"bench-{n}-{k}" for k in range(n)]
    t_up, ups = in_parallel(
        lambda name: run([*PORTLAB, "up", lab_name, "-i", name, "-q"], check=False), names)
    failed_up = [p.stderr.strip()[-300:] for p in ups if p.returncode != 0]

    found = runtime.instances()
    started = [name for name in names if name in found]
    ids = [c.ref for name in started for c in found[name].nodes.values()]
    mem = sum(memory_of(i) for i in ids)

    def solve_and_check(name: str) -> str | None:
        """None if every check passed, else what went wrong (for the report)."""
        solved = run([*PORTLAB, "solve", lab_name, "-i", name], check=False)
        if solved.returncode != 0:
            return f"{name}: solve failed: {solved.stderr.strip()[-200:]}"
        proc = run([*PORTLAB, "check", "-i", name, "--json"], check=False)
        if proc.returncode == 0:
            return None
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            return f"{name}: check failed: {proc.stderr.strip()[-200:]}"
        bad = [f"{c['id']} ({p['got']})" for c in report["checks"] if not c["passed"]
               for p in c["probes"][-1:]]
        return f"{name}: " + "; ".join(bad)

    t_check, problems = in_parallel(solve_and_check, started)
    failures = [p for p in problems if p is not None]
    t_down, _ = in_parallel(lambda name: run([*PORTLAB, "down", "-i", name], check=False), names)
    return {
        "n": n, "lab": lab_name, "up_all_s": t_up, "solve_and_check_all_s": t_check,
        "down_all_s": t_down, "up_failures": failed_up,
        "passing": len(started) - len(failures), "check_failures": failures,
        "memory_per_lab_mib": mem / max(1, len(started)) / 2**20,
        "left_behind": sorted(runtime.instances()),
    }


def bench_concurrent_floor(n: int, lab_name: str = "forwarding") -> dict[str, Any]:
    """N rendered files brought up and down with plain Compose, all at once."""
    lab = core.get_lab(lab_name)
    tag = image.ensure(TerminalProgress(sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, tuple[Plan, Path]] = {}
        taken = instances.taken_subnets()
        for k in range(n):
            name = f"floor-{n}-{k}"
            subnets = allocate.allocate(lab.requests(), name, taken)
            taken += subnets.values()
            plan = Plan(Binding(lab, name, subnets, new_token()), tag)
            path = Path(tmp) / f"{k}.yaml"
            path.write_text(render.compose(plan))
            files[name] = (plan, path)

        def cmd(name: str, *args: str) -> int:
            return run([*compose_argv(*files[name]), *args], check=False).returncode

        t_up, codes = in_parallel(lambda name: cmd(name, "up", "-d"), list(files))
        t_down, _ = in_parallel(lambda name: cmd(name, "down"), list(files))
    return {"n": n, "compose_up_all_s": t_up, "compose_up_failures": sum(c != 0 for c in codes),
            "compose_down_all_s": t_down}


def print_concurrent(r: dict[str, Any]) -> None:
    n = r["n"]
    print(f"\n{n} forwarding labs started at once:")
    print(f"  up, all ready     {r['up_all_s']:6.1f}s   plain compose up -d of {n} files "
          f"{r['compose_up_all_s']:6.1f}s")
    print(f"  solve + check all {r['solve_and_check_all_s']:6.1f}s   "
          f"{r['passing']}/{n} passing every check")
    print(f"  down all          {r['down_all_s']:6.1f}s   plain compose down of {n} files "
          f"{r['compose_down_all_s']:6.1f}s")
    print(f"  memory per lab    {r['memory_per_lab_mib']:6.1f} MiB resident (4 nodes)")
    for failure in r["up_failures"][:3]:
        print(f"  up failure: {failure}")
    for failure in r.get("check_failures", [])[:5]:
        print(f"  check failure: {failure}")
    if r["left_behind"]:
        print(f"  LEFT BEHIND: {r['left_behind']}")


# --- cold start ----------------------------------------------------------------------------------

COLD_REPOS = {"PORTLAB_NODE_REPO": "portlab-bench/node",
              "PORTLAB_BASE_REPO": "portlab-bench/node-base"}


def _remove_repos(repos: list[str]) -> None:
    for repo in repos:
        for img in docker_api.client().images.list(name=repo):
            for tag in img.tags:
                run(["docker", "rmi", "-f", tag], check=False)


def bench_cold() -> dict[str, Any]:
    """`portlab up` with no image at all (both layers built offline under scratch names),
    next to mmdebstrap + docker import + docker build by hand."""
    repos = list(COLD_REPOS.values())
    _remove_repos(repos)
    t_up = timed(lambda: run([*PORTLAB, "up", "forwarding", "-i", "bench-cold", "-q",
                              "--offline"], env=COLD_REPOS))
    run([*PORTLAB, "down", "-i", "bench-cold"], check=False)
    _remove_repos(repos)
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "rootfs.tar"
        excludes = [f"--dpkgopt={line.strip()}" for line in
                    (image.NODE_DIR / "dpkg-excludes").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
        argv = ["mmdebstrap", "--variant=apt", "--format=tar",
                '--aptopt=APT::Install-Recommends "false"',
                f"--include={','.join(image.packages())}", *excludes, image.SUITE, str(tar)]
        t_mm = timed(lambda: run(argv))
        t_import = timed(lambda: run(["docker", "import", str(tar), "portlab-bench/floor:x"]))
        t_build = timed(lambda: run(["docker", "build", "-q", "-t", "portlab-bench/floor:node",
                                     "--build-arg", "BASE=portlab-bench/floor:x",
                                     str(image.NODE_DIR)]))
    _remove_repos(["portlab-bench/floor"])
    return {"portlab_cold_up_s": t_up, "floor_mmdebstrap_s": t_mm,
            "floor_docker_import_s": t_import, "floor_docker_build_s": t_build}


def print_cold(r: dict[str, Any]) -> None:
    floor = r["floor_mmdebstrap_s"] + r["floor_docker_import_s"] + r["floor_docker_build_s"]
    print(f"\ncold `portlab up forwarding` (no image: built offline, then the lab up and ready): "
          f"{r['portlab_cold_up_s']:.1f}s")
    print(f"  by hand, image only: mmdebstrap {r['floor_mmdebstrap_s']:.1f}s + docker import "
          f"{r['floor_docker_import_s']:.1f}s + docker build {r['floor_docker_build_s']:.1f}s "
          f"= {floor:.1f}s")


def bench_grade(n: int, lab_name: str = "forwarding", parallel: int | None = None
                ) -> dict[str, Any]:
    """`portlab grade --submissions` of N students: reference solutions and each wrong one in
    turn, each student's rendered for their own variant; every grade checked against what it
    must be (full marks, or exactly the points of the checks a wrong one still passes)."""
    lab = core.get_lab(lab_name)
    image.ensure(TerminalProgress(sys.stderr))
    kinds = [None, *[w.name for w in lab.wrong_solutions]]
    expected: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "class"
        root.mkdir()
        for k in range(n):
            wrong = kinds[k % len(kinds)]
            student = f"s{k:03d}-{wrong or 'ref'}"
            core.classroom_solution(lab_name, root / student, student=student, wrong=wrong)
            fails = lab.wrong(wrong).fails if wrong else ()
            expected[student] = sum(p for c, p in lab.points.items() if c not in fails)
        argv = [*PORTLAB, "grade", lab_name, "--submissions", str(root), "--csv",
                str(Path(tmp) / "g.csv")]
        if parallel:
            argv += ["--parallel", str(parallel)]
        took = timed(lambda: run(argv))
        import csv

        rows = {r["student"]: r for r in csv.DictReader((Path(tmp) / "g.csv").open())}
    wrong = [s for s, want in expected.items()
             if rows.get(s, {}).get("score") != str(want)]
    return {"n": n, "lab": lab_name, "grade_all_s": took, "correct": n - len(wrong),
            "incorrect": wrong, "per_grade_s": took / n, "left_behind": sorted(runtime.instances())}


def print_grade(r: dict[str, Any]) -> None:
    print(f"\n{r['n']} {r['lab']} submissions graded at once (reference and wrong ones):")
    print(f"  all graded: {r['grade_all_s']:.1f} s ({r['per_grade_s']:.2f} s a grade); "
          f"target under 120 s")
    print(f"  graded correctly: {r['correct']}/{r['n']}"
          + (f"; wrong: {', '.join(r['incorrect'])}" if r["incorrect"] else ""))
    if r["left_behind"]:
        print(f"  left behind: {', '.join(r['left_behind'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labs", default=",".join(lab.name for lab in core.labs()),
                        help="labs for the warm figures (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="runs per warm figure (default 5)")
    parser.add_argument("--concurrent", default="", help="comma-separated N, e.g. 1,10,25,50")
    parser.add_argument("--cold", action="store_true", help="also time a cold start")
    parser.add_argument("--skip-warm", action="store_true", help="no warm per-lab figures")
    parser.add_argument("--grade", type=int, default=0, metavar="N",
                        help="grade N forwarding submissions at once (`portlab grade "
                             "--submissions`)")
    parser.add_argument("--parallel", type=int, default=0, metavar="N",
                        help="with --grade: grades at once (default: portlab's own)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": machine(), "labs": [], "concurrent": [], "cold": None,
                               "grade": None}
    m = results["machine"]
    print(f"machine: {m['cpus']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}, "
          f"Docker {m['docker']} ({m['storage_driver']}), {m['compose']}, "
          f"Python {m['python']}")
    try:
        if not args.skip_warm:
            for name in [x for x in args.labs.split(",") if x]:
                r = bench_lab(name, args.runs)
                results["labs"].append(r)
                print_lab(r)
        for n in [int(x) for x in args.concurrent.split(",") if x]:
            r = bench_concurrent(n)
            r.update(bench_concurrent_floor(n))
            results["concurrent"].append(r)
            print_concurrent(r)
        if args.cold:
            results["cold"] = bench_cold()
            print_cold(results["cold"])
        if args.grade:
            results["grade"] = bench_grade(args.grade, parallel=args.parallel or None)
            print_grade(results["grade"])
    finally:
        try:
            runtime.down_all(Quiet())
        except PortlabError as exc:  # e.g. a stale endpoint Docker keeps (see the message)
            print(f"bench: cleaning up: {exc}", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
