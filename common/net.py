"""Tiny address helpers shared by the servers.

Whether a ``host:port`` is loopback, and the address a bare port stands for.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback", "metrics_address"]


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` names a loopback host."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_address(value: str) -> str:
    """``host:port`` of ``[node] metrics_listen``: a bare port means loopback."""
    return f"127.0.0.1:{value}" if value.isdigit() else value
