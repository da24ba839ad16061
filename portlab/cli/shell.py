"""`portlab shell` and `portlab exec`: a node of a running lab, at your terminal."""

from __future__ import annotations

import os
import sys

import click

from portlab.cli.common import core, instance_option, lab_option


@click.command()
@click.argument("node", required=False)
@lab_option
@instance_option
def shell(node: str | None, lab: str | None, instance: str | None) -> None:
    """Open an interactive root shell on a node of a running lab (without NODE: the lab's
    nodes, the ones you work on first)."""
    core().attach(node, ["bash"], name=lab, instance=instance, tty=sys.stdin.isatty(),
                  env={"TERM": os.environ.get("TERM", "xterm")})


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@lab_option
@instance_option
def exec_(node: str, command: tuple[str, ...], lab: str | None, instance: str | None) -> None:
    """Run a command on a node; its output and exit code pass through.

    \b
    Example:  portlab exec router -- iptables -t nat -S
    """
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise click.UsageError("give a command to run after the node name (and `--`)")
    core().attach(node, list(command), name=lab, instance=instance,
                  tty=sys.stdin.isatty() and sys.stdout.isatty())
