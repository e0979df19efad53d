"""Addresses: where a process listens, what it publishes, how it is reached.

Every listening socket binds ``heron.network.bind.host``. What a process
publishes in the state manager (the tmaster's address, a stream manager's in
its registration, a metrics manager's URL) is its *advertised* host:
``heron.network.advertised.host`` if set, else the bind host, unless that is
a wildcard (``0.0.0.0``, ``::``), which nobody can connect to: then this
host's own address, the one it reaches the state manager from. Processes
of one container reach each other through `connect_host`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def connect_host(bind_host: str) -> str:
    """The address a process on this machine connects to, for a socket bound to
    ``bind_host``."""
    return "127.0.0.1" if bind_host in WILDCARDS else bind_host


def own_address(toward: str = "") -> str:
    """This host's address as others see it: the address it reaches ``toward``
    (``host:port[,...]``, the state manager's servers) from, if that is not loopback;
    else the first non-loopback IPv4 address its name resolves to."""
    first = toward.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if host and not is_loopback(host):
        # a UDP connect sends nothing: it only picks the route, and so our address on it
        with (
            contextlib.suppress(OSError, ValueError),
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe,
        ):
            probe.connect((host, int(port or 2181)))
            return str(probe.getsockname()[0])
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if not ipaddress.ip_address(address).is_loopback:
                return address
    except OSError:
        pass
    return socket.gethostname()


def advertised_host(bind_host: str, advertised: str, toward: str = "") -> str:
    """What a process bound to ``bind_host`` publishes (see the module's docstring);
    ``toward``: the state manager's servers, whose route names our address."""
    if advertised:
        return advertised
    if bind_host in WILDCARDS:
        return own_address(toward)
    return bind_host
