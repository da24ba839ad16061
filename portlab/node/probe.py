#!/usr/bin/env python3
"""portlab-probe: send one piece of real traffic from this node, print what happened as JSON.

    portlab-probe tcp HOST PORT [--timeout S] [--banner]
    portlab-probe http HOST PORT [--path /] [--timeout S]
    portlab-probe minecraft HOST PORT [--timeout S]
    portlab-probe udp HOST PORT [--payload TEXT] [--timeout S]
    portlab-probe listening tcp|udp PORT
    portlab-probe capture start IFACE [--filter BPF]  /  portlab-probe capture stop ID

On a terminal it says what happened in words; into a pipe (or with --json) it prints
one JSON object, what portlab reads. Every result has "state": one of
    open / answered   the other side answered
    closed            a TCP reset or ICMP port unreachable came back (a scanner says "closed")
    filtered          nothing came back before the timeout, or this node's own firewall
                      refused to send (a scanner says "filtered")
    unreachable       no route, or an ICMP host/network unreachable or "prohibited" came
                      back (REJECT --reject-with icmp-host-prohibited): Linux reports both
                      as "no route to host", so portlab cannot tell them apart; a scanner
                      such as nmap, which reads the ICMP code itself, says "filtered" for
                      "prohibited"
    error             the other side answered with something that was not expected, or
                      that could not be read (malformed, cut off, nested too deeply): an
                      observation like the others, never a crash of the probe
    probe-error       the probe could not send or listen at all (an unknown --device, a
                      local port in use, a name that does not resolve): nothing was
                      observed, so this is no verdict; the exit code is then 3
plus "local" (the address:port this node sent from) and what came back, bounded:
the text of the answer, and as "answer" the fields of a portlab-serve answer
(the node that served it, the client it saw, its proof: see answers.py).
"seq" is this connection's next sequence number after the request and
"nonce" what the server was asked to echo: portlab's checks compare them with
the answer's, which tells the same connection from a relayed one.
`listening` sends nothing: it reads this node's own sockets (/proc/net) and
says which process listens on PORT ("listening" or "not-listening").
`capture start` starts tcpdump on IFACE (or "any") in the background and
returns once it listens; `capture stop ID` stops it and lists the packets it
saw (addresses, protocol, ports, sizes: what anyone on that link could see).
Options for tcp/http/minecraft/udp: --device IFACE sends only through that
interface (as if a VPN's routes were not there), --source-port PORT fixes the
local port, --source ADDR sends from one of the node's own addresses, --via
GATEWAY sends to HOST through that gateway whatever the routes say (only this
probe's packets: what a neighbour on the link can do).
Learners may run it too: it is how `portlab check` sees the lab.
Standard library only. The kinds' code sits beside this script, a module per job:
sockets (tcp, http, minecraft, udp), listeners (/proc), tcpdump and pcap (capture),
savefile (--save), probeerror (probe-error), with answers and mcproto shared with
portlab-serve.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

# the node tools' shared modules sit beside this script (nodelayer.TOOLS)
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import answers  # noqa: E402
import savefile  # noqa: E402
from probeerror import PROBE_ERROR, CannotProbe  # noqa: E402

# kind -> (module, function): only the module of the kind asked is imported (a check runs
# portlab-probe dozens of times; each import it skips is CPU saved on every node)
HANDLERS = {"tcp": ("sockets", "probe_tcp"), "http": ("sockets", "probe_http"),
            "minecraft": ("sockets", "probe_minecraft"), "udp": ("sockets", "probe_udp"),
            "listening": ("listeners", "probe_listening"),
            "capture": ("tcpdump", "probe_capture")}


class Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's, told the terminal's width: its own asks shutil, an import that every
    probe would pay for, though help is seldom printed."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS") or os.get_terminal_size().columns)
        except (ValueError, OSError):
            width = 80
        super().__init__(prog, width=max(width - 2, 20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portlab-probe", description=__doc__,
                                     formatter_class=Formatter)
    parser.add_argument("--save", metavar="FILE",
                        help="also write the JSON answer to FILE (replaced atomically)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true",
                       help="print the result as JSON (the default when the output is not a "
                            "terminal: what portlab reads)")
    shown.add_argument("--words", action="store_true",
                       help="print the result in words (the default on a terminal)")
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in ("tcp", "http", "minecraft", "udp"):
        p = sub.add_parser(kind, formatter_class=Formatter)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=1.5)
        p.add_argument("--device", metavar="IFACE",
                       help="send only through this interface (SO_BINDTODEVICE), bypassing "
                            "the routing table's choice, e.g. a VPN's routes")
        p.add_argument("--source-port", type=int, metavar="PORT",
                       help="send from this local port")
        p.add_argument("--source", metavar="ADDR",
                       help="send from this address, one of this node's own")
        p.add_argument("--via", metavar="GATEWAY",
                       help="send to HOST through this gateway on the same link, whatever "
                            "this node's routes say (only this probe's packets)")
        if kind != "tcp":
            p.add_argument("--nonce", type=answers.clean_nonce, default=os.urandom(8).hex(),
                           help="what the server's answer must echo (8 to 64 letters and "
                                "digits; default: a fresh random one)")
        if kind == "tcp":
            p.add_argument("--banner", action="store_true",
                           help="read the first line the server sends")
        if kind == "http":
            p.add_argument("--path", default="/")
            p.add_argument("--host-header", metavar="NAME",
                           help="the Host header to send (default: HOST): which site a "
                                "server of many names, such as a reverse proxy, should answer")
        if kind == "udp":
            p.add_argument("--payload", default="portlab-probe")
    p = sub.add_parser("listening", formatter_class=Formatter,
                       help="which process listens on PORT of this very node")
    p.add_argument("proto", choices=("tcp", "udp"))
    p.add_argument("port", type=int)
    p.add_argument("--program", metavar="PATH",
                   help="also say whether each process runs this very program: the same "
                        "bytes as PATH here (e.g. /usr/sbin/sshd), whatever its name")
    p = sub.add_parser("capture", formatter_class=Formatter,
                       help="what this node sees on an interface (tcpdump)")
    csub = p.add_subparsers(dest="action", required=True)
    c = csub.add_parser("start", formatter_class=Formatter,
                        help="start capturing; prints the capture's id")
    c.add_argument("iface", help="interface name, or 'any'")
    c.add_argument("--filter", default="", help="a tcpdump filter, e.g. 'host 10.0.0.2'")
    c = csub.add_parser("stop", formatter_class=Formatter,
                        help="stop a capture and list its packets")
    c.add_argument("id")
    args = parser.parse_args(argv)
    if args.save:
        savefile.sweep(os.path.dirname(args.save) or ".")
    module, function = HANDLERS[args.kind]
    handler = getattr(importlib.import_module(module), function)
    if getattr(args, "nonce", None) == "":
        parser.error("--nonce takes 8 to 64 letters and digits")
    code = 0
    try:
        result = handler(args)
    except CannotProbe as exc:
        result, code = exc.fields, PROBE_ERROR
    except Exception as exc:  # portlab-probe's own fault, never the network's: no verdict
        result = {"state": "probe-error", "error": f"portlab-probe failed: "
                  f"{type(exc).__name__}: {str(exc)[:300]}"}
        code = PROBE_ERROR
    result["kind"] = args.kind
    out = json.dumps(result)
    if args.save:
        savefile.save(args.save, out)
    plain = args.words or (not args.json and sys.stdout.isatty())
    try:
        print(importlib.import_module("words").say(result) if plain else out)
    except BrokenPipeError:  # the reader went away: nobody is left to tell
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
