#!/bin/sh
# portlab-fresh IFACE ADDRESS COMMAND [ARG...]
#
# Runs COMMAND with ADDRESS/32 added to IFACE for it alone, and removes the address
# afterwards, whatever COMMAND did: a check's probe sent from an address nobody has seen
# (`fresh_source: true`), in one command where it took three. Exits with COMMAND's own code,
# or with 75 ("portlab-fresh: taken") when the node holds ADDRESS already, or 76 when the
# address could not be added at all (no `ip`, no NET_ADMIN).
set -u
if [ $# -lt 3 ]; then
  echo "usage: portlab-fresh IFACE ADDRESS COMMAND [ARG...]" >&2
  exit 2
fi
iface=$1
address=$2
shift 2
if ! said=$(ip addr add "$address/32" dev "$iface" 2>&1); then
  case $said in
    *"File exists"*) echo "portlab-fresh: taken: $address is on $iface already" >&2; exit 75 ;;
  esac
  echo "portlab-fresh: could not add $address to $iface: $said" >&2
  exit 76
fi
trap 'ip addr del "$address/32" dev "$iface" 2>/dev/null' EXIT
trap 'exit 143' TERM INT HUP
"$@"
