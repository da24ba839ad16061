"""`portlab up`"""

from __future__ import annotations

import time

import click

from portlab.cli.common import (
    core,
    early_start,
    instance_option,
    param_option,
    parse_params,
    progress,
    salt_option,
    say,
    student_option,
    verbose_option,
)


@click.command("up")
@click.argument("lab")
@instance_option
@param_option
@student_option
@salt_option
@click.option("--offline", "offline", flag_value=True, default=None,
              help="Build a missing node image with mmdebstrap, without a registry.")
@click.option("--registry", "offline", flag_value=False,
              help="Build a missing node image from debian:bookworm-slim via a registry.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result.")
@verbose_option
def command(lab: str, instance: str | None, params: tuple[str, ...], student: str | None,
            salt: str | None, offline: bool | None, quiet: bool, verbose: bool) -> None:
    """Start a lab: build the node image if missing, start its containers, wait until ready.

    The first time, the node image is built (about a minute, shown in steps;
    --verbose adds the build tools' raw output). Running it again while the lab
    is up changes nothing (and says so). If a previous `up` was interrupted,
    its leftovers are removed first. With --param, the lab runs with those
    values; with --student, that student's variant (its ports, addresses and
    keys, as `portlab grade` uses them). `check`, `solve` and `show` then use
    them too.
    """
    from portlab.views import lifecycle

    start = time.monotonic()
    # The engine starts what it can now (Compose's own start-up, half a second for v1),
    # before portlab has even loaded its core, and is handed the plan when it is ready.
    with early_start(lab, instance) as early:
        inst = core().up(lab, instance=instance, progress=progress(quiet, verbose), offline=offline,
                         early=early, params=parse_params(params), student=student, salt=salt)
    say(lifecycle.up_summary(inst, time.monotonic() - start))
