"""The `portlab` command. Thin: parse, call portlab.core, print. Errors become exit codes.

Exit codes: 0 ok, 1 checks failed, 2 usage or lab error, 3 Docker/Compose/image
problem, 4 internal error (a bug), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from typing import Any, NoReturn

import click

from portlab import __version__
from portlab.errors import ExitCode, PortlabError, RuntimeProblem, UsageError
from portlab.progress import Progress


class PortlabGroup(click.Group):
    """Turns portlab's errors into one message and an exit code (a traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or os.environ.get("PORTLAB_DEBUG") == "1"
        try:
            return super().invoke(ctx)
        except PortlabError as exc:
            if debug:
                raise
            click.echo(click.style("portlab: ", fg="red", bold=True) + str(exc), err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("portlab: interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            from portlab.docker_api import connection_problem

            lost = connection_problem(exc)  # the daemon went away: not a bug
            if lost is not None:
                click.echo(click.style("portlab: ", fg="red", bold=True) + str(lost), err=True)
                ctx.exit(int(lost.exit_code))
            click.echo(click.style("portlab: internal error: ", fg="red", bold=True) +
                       f"{type(exc).__name__}: {exc}\n  run again with --debug for the "
                       "traceback, and please report it", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def _core() -> Any:
    """portlab.core, imported on first use: `portlab up` starts Compose before loading it
    (and the Docker SDK and Jinja2 with it), so that the two start-ups overlap."""
    from portlab import core

    return core


def _sigterm(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _sigterm)
    cli(prog_name="portlab")


def _color() -> bool | None:
    return None if sys.stdout.isatty() else False


def _progress(quiet: bool = False) -> Progress:
    return Progress(sys.stderr, quiet=quiet)


instance_option = click.option(
    "--instance", "-i", metavar="NAME",
    help="Which instance of the lab (default: the lab's own name). Lets several copies of a "
         "lab run side by side.")


@click.group(cls=PortlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portlab")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
def cli(debug: bool) -> None:
    """Learn ports, NAT, port forwarding, firewalls and VPNs on real Linux containers.

    \b
    A first session:
      portlab list                 the labs
      portlab show forwarding      the story, the network, your tasks
      portlab up forwarding        start it (builds the node image the first time)
      portlab shell router         a root shell on the lab's router
      portlab check                prove your work with real traffic
      portlab down forwarding      remove everything the lab started
    """


@cli.command("list")
def list_cmd() -> None:
    """List the labs: name, difficulty, title and the concepts each teaches."""
    for lab in _core().labs():
        click.echo(f"{lab.name:<12} {lab.difficulty:<13} {lab.title}")
        click.echo(f"{'':<26}teaches: {', '.join(lab.concepts)}")


@cli.command()
@click.argument("lab")
@instance_option
def show(lab: str, instance: str | None) -> None:
    """Show a lab's brief: the story, the network drawn out, the tasks and how to get in.

    If the lab is running, the addresses are the running instance's own.
    """
    click.echo(_core().show(lab, instance=instance, color=bool(sys.stdout.isatty())), nl=False)


@cli.command()
@click.argument("lab")
@instance_option
@click.option("--offline", "offline", flag_value=True, default=None,
              help="Build a missing node image with mmdebstrap, without a registry.")
@click.option("--registry", "offline", flag_value=False,
              help="Build a missing node image from debian:bookworm-slim via a registry.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result.")
def up(lab: str, instance: str | None, offline: bool | None, quiet: bool) -> None:
    """Start a lab: build the node image if missing, start its containers, wait until ready.

    Running it again while the lab is up changes nothing (and says so). If a
    previous `up` was interrupted, its leftovers are removed first.
    """
    from portlab import compose, names

    start = time.monotonic()
    try:
        project: str | None = names.project_name(names.check_instance_name(
            lab if instance is None else instance))
    except PortlabError:
        project = None  # core.up says what is wrong with the name
    # Compose starts now and reads the compose file from stdin once portlab has loaded
    # and planned the lab; stopped again if it is not used.
    with compose.ahead(project, compose.UP_ARGS) if project else nullcontext() as early:
        inst = _core().up(lab, instance=instance, progress=_progress(quiet), offline=offline,
                          early=early)
    took = time.monotonic() - start
    suffix = "" if inst.name == inst.lab else f" --instance {inst.name}"
    click.echo(f"Lab '{inst.lab}' is up as instance '{inst.name}': {len(inst.containers)} "
               f"nodes ready in {took:.1f}s.")
    for node, interfaces in inst.interfaces().items():
        addrs = ", ".join(f"{name} {address}" for name, address in interfaces.items())
        click.echo(f"  {node:<10} {addrs}")
    steps = [
        (f"portlab show {inst.lab}{suffix}", "the story, the network, your tasks"),
        (f"portlab shell NODE{suffix}",
         f"a root shell on a node (e.g. {sorted(inst.containers)[0]})"),
        (f"portlab check{suffix}", "prove it works, with real traffic"),
        (f"portlab down {inst.lab}{suffix}", "remove it when you are done"),
    ]
    width = max(len(cmd) for cmd, _ in steps) + 3
    click.echo("Next:")
    for cmd, what in steps:
        click.echo(f"  {cmd:<{width}}{what}")


@cli.command()
@click.argument("lab", required=False)
@instance_option
@click.option("--all", "everything", is_flag=True, help="Remove every portlab lab instance.")
def down(lab: str | None, instance: str | None, everything: bool) -> None:
    """Remove a running lab: its containers and networks, and nothing else.

    With no LAB, removes the only running lab. `--all` removes every instance
    portlab started (found by their labels), whichever lab they run.
    """
    start = time.monotonic()
    removed = _core().down(lab, instance=instance, everything=everything, progress=_progress(True))
    if removed is None:
        click.echo("Nothing to remove: no portlab lab is up.")
        return
    click.echo(f"Removed {removed.containers} containers and {removed.networks} networks in "
               f"{time.monotonic() - start:.1f}s.")


@cli.command()
@click.option("--images", is_flag=True,
              help="Also remove portlab's images that no container uses (old node image tags), "
                   "keeping the ones this portlab uses.")
@click.option("--all-images", is_flag=True,
              help="Like --images, and the current node and base images too (the next `up` "
                   "builds them again).")
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
def prune(images: bool, all_images: bool, dry_run: bool) -> None:
    """Remove everything portlab left behind in this scope, and nothing else.

    \b
    Always: every container and network labelled with this scope
    ($PORTLAB_SCOPE, default "default"), whichever lab instance it belongs
    to, the layers of interrupted image builds and the lock files of a
    `portlab up` that was killed outright. With --images: portlab's
    images (portlab/node, portlab/node-base) that no container of any scope
    uses. Never other scopes' labs, never other images, never a container or
    network without portlab's labels.
    """
    got = _core().prune(images=images or all_images, current=all_images, dry_run=dry_run,
                     progress=_progress(True))
    verb = "Would remove" if got.dry_run else "Removed"
    click.echo(f"{verb} {len(got.containers)} containers and {len(got.networks)} networks "
               f"({len(got.instances)} lab instances), {len(got.images)} images and "
               f"{len(got.leftovers)} build leftovers.")
    for title, items in (("containers", got.containers), ("networks", got.networks),
                         ("images", got.images), ("build leftovers", got.leftovers)):
        if items and (got.dry_run or title == "images"):
            click.echo(f"  {title}: {', '.join(items)}")
    if got.kept_images:
        click.echo(f"Kept {len(got.kept_images)} unused portlab images "
                   f"({', '.join(got.kept_images)}); `portlab prune --images` removes them.")


@cli.command()
@click.argument("lab", required=False)
@instance_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (format documented in docs/status-json.md).")
def status(lab: str | None, instance: str | None, as_json: bool) -> None:
    """Show running labs: nodes, interfaces and addresses, WireGuard kind, image."""
    rows = _core().status(lab, instance=instance)
    if as_json:
        click.echo(json.dumps({"format": 1, "instances": rows}, indent=2))
        return
    if not rows:
        click.echo("No portlab lab is up. Start one with `portlab up <lab>` (see `portlab list`).")
        return
    for row in rows:
        click.echo(f"{row['instance']}  lab {row['lab']}, {row['state']}, image {row['image']}")
        for gone in sorted({n["image"] for n in row["nodes"] if not n["image_present"]}):
            click.echo(f"  image {gone} was deleted while the lab ran:\n"
                       "  its nodes keep running on their own copy; the next `portlab up` builds "
                       "it again")
        nets = ", ".join(f"{n['name']} {n['subnet']}" for n in row["networks"])
        click.echo(f"  networks: {nets}")
        for node in row["nodes"]:
            addrs = "  ".join(f"{i['name']} {i['address']}" for i in node["interfaces"])
            line = f"  {node['name']:<10} {node['state']:<8} {addrs}"
            wg = node.get("wireguard")
            if wg:
                ifs = ", ".join(f"{k} ({v})" for k, v in wg["interfaces"].items()) or "none up"
                line += f"\n  {'':<10} WireGuard: {wg['available']} available; tunnels: {ifs}"
            click.echo(line)


@cli.command()
@click.argument("lab", required=False)
@instance_option
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable results (format documented in docs/check-json.md).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write JUnit XML to this file (for CI systems).")
@click.option("--only", multiple=True, metavar="CHECK", help="Run only this check (repeatable).")
@click.option("--verbose", "-v", is_flag=True, help="Show the traffic of passed checks too.")
def check(lab: str | None, instance: str | None, as_json: bool, junit_file: str | None,
          only: tuple[str, ...], verbose: bool) -> None:
    """Check a running lab by sending real traffic through it.

    Prints a line per check; for a failure, what was sent, from where, to
    where, what came back, and a hint. Exits 0 only when every check passes.
    """
    from portlab import report

    if junit_file and not os.path.isdir(os.path.dirname(os.path.abspath(junit_file))):
        raise UsageError(f"cannot write the JUnit file {junit_file}: its directory does not exist")
    result = _core().check(lab, instance=instance, only=list(only) or None)
    if junit_file:
        try:
            with open(junit_file, "w") as fh:
                fh.write(report.junit(result))
        except OSError as exc:
            raise UsageError(f"cannot write the JUnit file {junit_file}: "
                             f"{exc.strerror or exc}") from None
    if as_json:
        click.echo(report.as_json(result))
    else:
        click.echo(report.terminal(result, color=_color(), verbose=verbose))
    sys.exit(int(ExitCode.OK if result.passed else ExitCode.CHECKS_FAILED))


@cli.command()
@click.argument("lab", required=False)
@instance_option
@click.option("--wrong", metavar="NAME",
              help="Apply one of the lab's known wrong solutions instead (for demos and tests).")
def solve(lab: str | None, instance: str | None, wrong: str | None) -> None:
    """Apply the lab's reference solution to the running lab (for trainers and tests)."""
    inst, applied = _core().solve(lab, instance=instance, wrong=wrong)
    what = "the reference solution" if applied == "solution" else f"wrong solution '{applied}'"
    click.echo(f"Applied {what} to instance '{inst.name}'. Now run `portlab check`.")


@cli.command("render")
@click.argument("lab")
@instance_option
def render_cmd(lab: str, instance: str | None) -> None:
    """Print the compose file `portlab up` would start, without starting anything."""
    click.echo(_core().render_compose(lab, instance=instance), nl=False)


lab_option = click.option("--lab", "-l", "lab", metavar="LAB",
                          help="Which lab, when more than one is up.")


def _docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        raise RuntimeProblem("the `docker` command is not installed (needed for shells)")
    return path


@cli.command()
@click.argument("node")
@lab_option
@instance_option
def shell(node: str, lab: str | None, instance: str | None) -> None:
    """Open an interactive root shell on a node of a running lab."""
    container = _core().node_container(node, lab, instance)
    flags = "-it" if sys.stdin.isatty() else "-i"
    os.execv(_docker_cli(), ["docker", "exec", flags, "-e", "TERM=" + os.environ.get(
        "TERM", "xterm"), container.id, "bash"])


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@lab_option
@instance_option
def exec(node: str, command: tuple[str, ...], lab: str | None, instance: str | None) -> None:  # noqa: A001
    """Run a command on a node; its output and exit code pass through.

    \b
    Example:  portlab exec router -- iptables -t nat -S
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("give a command to run after the node name (and `--`)")
    container = _core().node_container(node, lab, instance)
    flags = ["-i"] + (["-t"] if sys.stdin.isatty() and sys.stdout.isatty() else [])
    proc = subprocess.run([_docker_cli(), "exec", *flags, container.id, *command])
    sys.exit(proc.returncode)


@cli.group()
def image() -> None:
    """The node image every lab runs on."""


@image.command("build")
@click.option("--offline", "offline", flag_value=True, default=None,
              help="Build with mmdebstrap from Debian's packages (no registry needed).")
@click.option("--registry", "offline", flag_value=False,
              help="Build from debian:bookworm-slim pulled from a registry.")
@click.option("--force", is_flag=True, help="Rebuild the base even if it exists.")
def image_build(offline: bool | None, force: bool) -> None:
    """Build the node image. Without options, uses a registry if one answers, else mmdebstrap.

    The tag carries a hash of the package list and portlab's node tools, so it
    changes exactly when what goes into the image changes.
    """
    from portlab import image as image_mod

    tag = image_mod.node_tag()
    if not force and image_mod.exists(tag):
        click.echo(f"{tag} is already built (use --force to rebuild).")
        return
    tag = image_mod.build(_progress(), offline=offline, force=force)
    click.echo(f"Built {tag}.")


@image.command("tag")
def image_tag() -> None:
    """Print the node image tag this version of portlab uses."""
    from portlab import image as image_mod

    click.echo(image_mod.node_tag())
