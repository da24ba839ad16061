"""The classroom benchmark's pure helpers (bench/classroom.py): its percentiles, and how it
reads the server's links, a page's CSRF token, memory figures and a Check's answer. No
server, no Docker, no timing."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_classroom",
                                                  ROOT / "bench" / "classroom.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bc = _load()


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 5.0]
    assert bc.percentile(values, 50) == 3.0
    assert bc.percentile(values, 0) == 1.0
    assert bc.percentile(values, 100) == 5.0
    assert bc.percentile(values, 95) == pytest.approx(4.8)
    assert bc.percentile([1.0, 2.0], 50) == pytest.approx(1.5)
    assert bc.percentile([7.0], 95) == 7.0
    assert math.isnan(bc.percentile([], 50))
    with pytest.raises(ValueError):
        bc.percentile([1.0], 101)


def test_spread_is_p50_p95_max() -> None:
    assert bc.spread([1.0, 2.0, 3.0, 4.0, 5.0]) == "3.00 / 4.80 / 5.00"
    assert bc.spread([]) == "-"


def test_the_links_the_server_prints() -> None:
    out = """Serving lab 'forwarding' to 3 seats on http://127.0.0.1:41234 (Ctrl-C stops it and removes every lab).
  trainer: http://127.0.0.1:41234/t/TRAINER_tok-1
  seat  1                      http://127.0.0.1:41234/s/aaa_AAA-111
  seat  2                      http://127.0.0.1:41234/s/bbb
  seat 10 ann smith            http://127.0.0.1:41234/s/ccc
"""  # noqa: E501
    links = bc.parse_links(out.splitlines())
    assert links.base == "http://127.0.0.1:41234"
    assert links.trainer == "http://127.0.0.1:41234/t/TRAINER_tok-1"
    assert links.seats == {1: "http://127.0.0.1:41234/s/aaa_AAA-111",
                           2: "http://127.0.0.1:41234/s/bbb",
                           10: "http://127.0.0.1:41234/s/ccc"}
    assert bc.parse_links(["Stopped. Removed 3 labs."]).seats == {}


def test_the_csrf_token_of_a_student_page() -> None:
    page = ('<html><head><title>x</title></head>\n<body class="room student" '
            'data-csrf="Tok_en-1" data-nodes="router friend">')
    assert bc.csrf_of(page) == "Tok_en-1"
    assert bc.csrf_of('<div data-csrf="no"></div><body class="x">') is None


def test_sizes_as_docker_stats_prints_them() -> None:
    assert bc.parse_size("12.5MiB") == 12.5 * 2**20
    assert bc.parse_size("1GiB") == 2**30
    assert bc.parse_size("3kB") == 3000
    assert bc.parse_size("0B") == 0
    assert bc.parse_size(" 7 ") == 7
    with pytest.raises(ValueError):
        bc.parse_size("12 parsecs")


def test_memory_as_docker_stats_counts_it() -> None:
    v1 = "cache 4096\nrss 1000\ntotal_inactive_file 3000\ntotal_rss 1000\n"
    assert bc.cgroup_memory(v1, 10_000) == 7000
    v2 = "anon 1000\nfile 5000\ninactive_file 2000\n"
    assert bc.cgroup_memory(v2, 9000) == 7000
    assert bc.cgroup_memory("rss 5\n", 8000) == 8000  # nothing to subtract
    assert bc.cgroup_memory("total_inactive_file 9000\n", 8000) == 8000  # never below zero


def test_a_checks_answer() -> None:
    failing = json.dumps({"state": "ready", "passed": 2, "total": 4, "report": "FAIL ..."})
    assert bc.check_outcome(200, failing) == ("verdict", 2, 4)
    couldnt = json.dumps({"state": "ready", "passed": 0, "total": 4,
                          "report": "portlab could not check: the lab is not running"})
    assert bc.check_outcome(200, couldnt) == ("could-not-check", 0, 4)
    assert bc.check_outcome(409, "the lab is starting") == ("http-error", None, None)
    assert bc.check_outcome(429, "a Check just ran") == ("http-error", None, None)
    assert bc.check_outcome(200, "<html>") == ("http-error", None, None)
    assert bc.check_outcome(200, "{}") == ("http-error", None, None)


def test_what_counts_as_trouble_in_the_servers_stderr() -> None:
    text = ("removing class-01, left by a classroom that was stopped by force\n"
            "stopping: removing every lab this classroom started\n"
            "removed seat 1's lab (class-01)\n"
            "Traceback (most recent call last):\n"
            "ConnectionResetError: [Errno 104] Connection reset by peer\n"
            "Task exception was never retrieved\n")
    assert bc.stderr_problems(text) == ["Traceback (most recent call last):",
                                        "ConnectionResetError: [Errno 104] Connection reset "
                                        "by peer",
                                        "Task exception was never retrieved"]


def test_a_seat_is_usable_only_without_errors_or_late_checks() -> None:
    ok = bc.Student(1, "http://x/s/a", terminal_s=5.0,
                    checks=[bc.CheckResult(0.0, 4.0, "verdict", 2, 4)])
    assert ok.usable
    late = bc.Student(2, "http://x/s/b", terminal_s=5.0, late=1)
    assert not late.usable
    refused = bc.Student(3, "http://x/s/c", terminal_s=5.0,
                         checks=[bc.CheckResult(0.0, 0.1, "http-error")])
    assert not refused.usable and refused.check_errors == 1
    couldnt = bc.Student(4, "http://x/s/d", terminal_s=5.0,
                         checks=[bc.CheckResult(0.0, 0.1, "could-not-check", 0, 4)])
    assert not couldnt.usable and couldnt.could_not_check == 1
    assert not bc.Student(5, "http://x/s/e").usable  # never got its terminal


def test_the_busiest_processes_between_two_looks() -> None:
    before = {1: ("dockerd", 10.0), 2: ("python", 1.0), 3: ("bash", 5.0), 4: ("gone", 9.0)}
    after = {1: ("dockerd", 14.0), 2: ("python", 2.0), 3: ("bash", 5.0), 5: ("python", 3.0),
             6: ("sleep", 0.0)}
    assert bc.busiest(before, after, 2.0) == [("dockerd", 2.0), ("python", 2.0)]
    assert bc.busiest(before, after, 2.0, top=1) == [("dockerd", 2.0)]
    recycled = {2: ("bash", 0.5)}  # the pid went to another program: counted from zero
    assert bc.busiest(before, recycled, 1.0) == [("bash", 0.5)]
