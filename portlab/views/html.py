"""portlab's web pages, from the Jinja2 templates in portlab/views/pages/.

* the check report (`portlab check --html FILE`): one self-contained file,
  with the lab's diagram, each check's result with what was sent and what
  came back, and the hints;
* the live page (`portlab trace --web`, `portlab demo --web`), served by
  portlab.web.serve on 127.0.0.1.

* the classroom's student page and trainer's dashboard (`portlab classroom
  serve`, portlab.web.app), which load xterm.js and their scripts from the
  server itself.

The first two inline their style, script and picture; none fetches anything
from another site, so they all work offline.
"""

from __future__ import annotations

import time
from importlib import resources

import jinja2

from portlab import __version__
from portlab.model.context import Binding
from portlab.probes.runner import Report
from portlab.views import diagram, layout
from portlab.views import report as report_view


def asset(name: str) -> str:
    """A file of portlab/views/pages/, as text (a template, a script, a style sheet)."""
    folder = resources.files("portlab.views").joinpath("pages")
    return folder.joinpath(name).read_text(encoding="utf-8")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FunctionLoader(asset), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def check_report(report: Report, binding: Binding) -> str:
    data = report_view.as_dict(report)
    return _env().get_template("report.html.j2").render(
        lab=binding.lab, report=data, passed=sum(1 for c in data["checks"] if c["passed"]),
        when=time.strftime("%Y-%m-%d %H:%M:%S"), version=__version__,
        diagram=diagram.svg(layout.of(binding)), css=asset("portlab.css"))


def live_page(binding: Binding, *, mode: str, traced: list[str]) -> str:
    """mode: "trace" (packets only) or "demo" (with the steps as slides)."""
    return _env().get_template("live.html.j2").render(
        lab=binding.lab, instance=binding.instance, mode=mode, traced=traced,
        diagram=diagram.svg(layout.of(binding)),
        css=asset("portlab.css") + asset("diagram.css"), js=asset("live.js"))


def lab_picture(binding: Binding) -> str:
    """The lab's diagram as inline SVG (from Graphviz), with the instance's addresses."""
    return diagram.svg(layout.of(binding))


def student_page(lab_title: str, *, seat: str, nodes: list[str], csrf: str, tls: bool) -> str:
    """The classroom's page of one seat: brief, diagram, terminals, Check and Reset."""
    return _env().get_template("student.html.j2").render(
        title=lab_title, seat=seat, nodes=nodes, csrf=csrf, tls=tls, version=__version__)


def dashboard_page(lab_title: str, *, lab: str, checks: list[str], csrf: str, tls: bool,
                   nodes: list[str]) -> str:
    """The trainer's dashboard of a classroom: every seat, its checks, its terminals."""
    return _env().get_template("dashboard.html.j2").render(
        title=lab_title, lab=lab, checks=checks, csrf=csrf, tls=tls, nodes=nodes,
        version=__version__)
