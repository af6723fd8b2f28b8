"""Hosts on one machine: network namespaces joined by veth links to a bridge (iproute2).

`Lan` makes a namespace holding a bridge (the switch) and, per host, a namespace with one
veth link to it and its own address. Every namespace is named after this process, so
parallel runs do not meet, and `Lan.close` deletes them all (the namespaces' processes
are the caller's to end first).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

SUBNET = "10.213.7"


def ip(*args: str) -> None:
    """Run ``ip ARGS`` (root), failing with its message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Lan:
    """A switch namespace and the host namespaces linked to it."""

    prefix: str = field(default_factory=lambda: f"fs{os.getpid()}")
    hosts: dict[str, str] = field(default_factory=dict)  # name -> address
    namespaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.switch = self._namespace("lan")
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _namespace(self, name: str) -> str:
        namespace = f"{self.prefix}-{name}"
        ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        ip("-n", namespace, "link", "set", "lo", "up")
        return namespace

    def namespace(self, host: str) -> str:
        """The namespace of a host made by `add`."""
        return f"{self.prefix}-{host}"

    def add(self, host: str) -> str:
        """A host with its own namespace and address on the switch; returns the address."""
        namespace = self._namespace(host)
        address = f"{SUBNET}.{len(self.hosts) + 10}"
        port = f"p{len(self.hosts)}"  # the switch's end of the link
        ip("link", "add", "eth0", "netns", namespace, "type", "veth", "peer", port,
           "netns", self.switch)  # fmt: skip
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        self.hosts[host] = address
        return address

    def link(self, host: str, up: bool) -> None:
        """Plug a host's cable in or pull it out (its link on the switch's side)."""
        port = f"p{list(self.hosts).index(host)}"
        ip("-n", self.switch, "link", "set", port, "up" if up else "down")

    def exec_prefix(self, host: str) -> tuple[str, ...]:
        """Command words that run a command on ``host``."""
        return ("ip", "netns", "exec", self.namespace(host))

    def close(self) -> None:
        """Delete every namespace (and with them their links)."""
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        self.namespaces.clear()
