"""Client addresses as the per-address limits count them (sign-ins, connections, streams).

IPv4 addresses count one by one; IPv6 addresses by their /64 network, which one subscriber
usually holds whole: counting single IPv6 addresses would give any host millions of them.
"""

from __future__ import annotations

import ipaddress

#: The key of callers whose address is unknown (the connection is already gone).
UNKNOWN_PEER = "unknown"
#: IPv6 addresses are counted by the network of this prefix length.
IPV6_PEER_PREFIX = 64


def peer_key(address: str | None) -> str:
    """The key of a caller's address: IPv4 as is (also when mapped into IPv6), IPv6 by /64."""
    if not address:
        return UNKNOWN_PEER
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PEER_PREFIX), strict=False))
    return str(ip)
