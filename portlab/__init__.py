"""portlab: hands-on labs for ports, NAT, forwarding, firewalls and VPNs on real containers."""

__version__ = "0.1.0"
