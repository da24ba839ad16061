"""`portlab render`"""

from __future__ import annotations

import click

from portlab.backend import RENDER_FORMATS
from portlab.cli.common import core, instance_option, param_option, parse_params
from portlab.errors import UsageError


@click.command("render")
@click.argument("lab")
@instance_option
@param_option
@click.option(
    "--format", "fmt", type=click.Choice(RENDER_FORMATS), default=RENDER_FORMATS[0],
    show_default=True,
    help="compose: the Compose file `portlab up` starts on Docker (`docker compose -p "
         "PROJECT -f FILE up -d` starts it too). kubernetes: the same lab as manifests for a "
         "cluster with Multus: a namespace, one NetworkAttachmentDefinition per lab network, "
         "one pod per node, a NetworkPolicy that seals the pod network (docs/scaling.md; not "
         "yet run live, only validated offline).")
@click.option(
    "--registry", metavar="REGISTRY", envvar="PORTLAB_K8S_REGISTRY",
    help="With --format kubernetes: the registry the cluster pulls the node image from, e.g. "
         "registry.example.com:5000 (the image becomes REGISTRY/portlab/node:HASH; push it "
         "there). Default: $PORTLAB_K8S_REGISTRY, else the local tag.")
def command(lab: str, instance: str | None, params: tuple[str, ...], fmt: str,
            registry: str | None) -> None:
    """Print what `portlab up` would start, without starting anything: the compose file, or
    with --format kubernetes the Kubernetes manifests of the same lab."""
    if fmt == "kubernetes":
        text = core().render_kubernetes(lab, instance=instance, params=parse_params(params),
                                        registry=registry)
    else:
        source = click.get_current_context().get_parameter_source("registry")
        if registry and source == click.core.ParameterSource.COMMANDLINE:
            raise UsageError("--registry goes with --format kubernetes",
                             hint="a compose file uses the node image Docker has locally")
        text = core().render_compose(lab, instance=instance, params=parse_params(params))
    click.echo(text, nl=False)
