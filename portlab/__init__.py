"""portlab: hands-on labs for ports, NAT, forwarding, firewalls and VPNs on real containers."""

__version__ = "0.1.0"
# The distribution's name on PyPI: `portlab` there is another author's project. The command
# and the import name stay `portlab`.
DISTRIBUTION = "portlab-net"


def requirement() -> str:
    """This exact version, as a pip requirement: what a starter repository installs."""
    return f"{DISTRIBUTION}=={__version__}"
