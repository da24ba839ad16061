#!/bin/sh
# `portlab` typed in a node's shell: portlab runs on your own computer, not on the lab's nodes.
cat >&2 <<'SAY'
portlab runs on your own computer, not on a lab node: this shell is inside the lab.
Open another terminal on your computer and run it there (for example `portlab check`),
or type `exit` to leave this node's shell first.
SAY
exit 127
