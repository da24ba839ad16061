"""`portlab doctor`: what on this machine keeps labs from running, and the fix for each.

    findings    Finding (id, ok/warn/fail, what was found, the fix), Report, exit codes
    hostinfo    the host's own facts without Docker (modules, sysctls, /dev/net/tun,
                cgroups, disk, the host's iptables), read under a root folder for tests
    checks      one function per check, from facts to a Finding; `run` gathers the facts
                (Docker's through the backend: facts(), probe_node()), `related` the quick
                ones an error of `up` or `grade` names

The text is portlab.views.doctor's, the verb portlab.cli.doctor's.
"""
