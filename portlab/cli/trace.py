"""`portlab trace`"""

from __future__ import annotations

import sys

import click

from portlab.cli.common import color, core, instance_option, page_options, web_bind


@click.command("trace")
@click.argument("lab", required=False)
@instance_option
@click.option("--node", "-n", "nodes", multiple=True, metavar="NODE",
              help="Trace this node (repeatable). Default: the nodes that forward "
                   "(routers, where NAT and firewalls are).")
@click.option("--filter", "-f", "expr", default="", metavar="EXPR",
              help="Only packets matching this tcpdump expression, e.g. 'tcp port 25565' "
                   "(default: the lab's own, the traffic its task is about, where it has one; "
                   "else every packet).")
@click.option("--every-packet", "every", is_flag=True,
              help="Every IPv4 packet (in a lab with IPv6, every IPv6 one too but neighbour "
                   "discovery's), not only the lab's own filter.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON event per line, for tools (docs/trace-json.md).")
@click.option("--web", is_flag=True,
              help="Also show it live in the browser: a page on 127.0.0.1 with the lab's "
                   "diagram, whose links light up as packets cross them.")
@page_options
def command(lab: str | None, instance: str | None, nodes: tuple[str, ...], expr: str,
            every: bool, as_json: bool, web: bool, port: int, bind: str,
            allow_remote: bool) -> None:
    """Watch real traffic at a lab's nodes, in words: one line per packet, and
    on a router each connection it tracks, with its NAT translation.

    Start it, then send traffic from another terminal (`portlab shell friend`,
    `portlab check`). A packet line says where it was seen (interface and
    direction), the protocol, who sent it to whom, and what it means for TCP
    ("opens a connection", "refused or reset"). A NAT line pairs a flow's
    outside and inside addresses:

    \b
      NAT  TCP 198.51.100.10:51234 → 198.51.100.1:25565 becomes → 10.0.0.10:25565

    It runs tcpdump (and conntrack on routers) on the nodes; Ctrl-C stops them
    there, leaving nothing running.

    \b
      portlab trace                          the routers of the lab that is up
      portlab trace --every-packet           every packet, not only the lab's own
      portlab trace --node router --node gamer-pc --filter 'tcp port 25565'
      portlab trace vpn --node isp --json    one JSON object per event
    """
    from portlab.views import trace as view

    address = web_bind(bind, port, allow_remote) if web else None
    if every and expr:
        raise click.UsageError("--every-packet and --filter say opposite things: give one")
    made = core().trace(lab, instance=instance, nodes=nodes, expr=expr, every=every)
    label = len(made.names) > 1
    width = max(len(n) for n in made.names)
    forwarding = [n.name for n in made.lab.nodes if n.forwarding]
    server = None
    if address is not None:
        from portlab.web.serve import LiveServer

        page = core().live_page(made.instance, mode="trace", traced=made.names)
        server = LiveServer(page, address).start()
    try:
        with made:
            own = not expr and not every and bool(made.lab.trace_filter)
            click.echo(view.started(made.names, forwarding, made.expr, own), err=True)
            if server is not None:
                click.echo(f"live page: {server.url}  (open it in a browser)", err=True)
            for event in made.events():
                if server is not None:
                    server.hub.publish(event.type, event.to_json())
                click.echo(view.json_line(event) if as_json else
                           view.line(event, label=label, width=width, color=color()))
                sys.stdout.flush()
    except KeyboardInterrupt:
        click.echo(f"trace stopped: nothing of it runs on {', '.join(made.names)} any more",
                   err=True)
    finally:
        if server is not None:
            server.hub.publish("end", {"text": "the trace stopped"})
            server.close()
