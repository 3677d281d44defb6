"""Which IP addresses the downloader may connect to.

The rule is written out here instead of leaning on ``ipaddress``'s ``is_global``,
whose tables change between Python versions. IPv6 addresses that carry an IPv4
address (IPv4-mapped, IPv4-compatible, SIIT, NAT64 and 6to4) are unwrapped and the
IPv4 address inside is judged by the IPv4 rule: ``64:ff9b::7f00:1`` is 127.0.0.1
through a NAT64 gateway, and must be refused like it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

# IPv4 that is not public unicast (IANA special-purpose registry, whole blocks).
REFUSED_V4 = tuple(
    _v4(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata services)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)

# Public IPv6 unicast is 2000::/3; everything outside it (ULA fc00::/7, link-local
# fe80::/10, site-local fec0::/10, multicast, discard-only, local-use NAT64
# 64:ff9b:1::/48 ...) is refused, except the IPv4 carriers unwrapped below.
GLOBAL_V6 = _v6("2000::/3")
REFUSED_V6 = tuple(
    _v6(net)
    for net in (
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)

# IPv6 forms with an IPv4 address in their last 32 bits.
MAPPED = _v6("::ffff:0:0/96")  # ::ffff:a.b.c.d
SIIT = _v6("::ffff:0:0:0/96")  # ::ffff:0:a.b.c.d
COMPATIBLE = _v6("::/96")  # ::a.b.c.d (deprecated)
NAT64 = _v6("64:ff9b::/96")  # well-known NAT64 prefix
SIX_TO_FOUR = _v6("2002::/16")  # 2002:AABB:CCDD::/48, the IPv4 address in bits 16-47


def parse(address: str) -> IPAddress:
    """An IP address from text, without a zone id (``fe80::1%eth0``)."""
    return ipaddress.ip_address(address.split("%", 1)[0])


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (or None)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    value = int(ip)
    if ip in MAPPED or ip in SIIT or ip in COMPATIBLE or ip in NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in SIX_TO_FOUR:
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Public unicast: may be fetched from a stranger's URL."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        ip = inner
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in REFUSED_V4)
    return ip in GLOBAL_V6 and not any(ip in net for net in REFUSED_V6)


def _in_any(ip: IPAddress, networks: Iterable[str]) -> bool:
    for net in networks:
        network = ipaddress.ip_network(net, strict=False)
        if ip.version == network.version and ip in network:
            return True
    return False


def address_allowed(address: str, allow_private: bool, extra_allowed: tuple[str, ...] = ()) -> bool:
    """Public unicast addresses only, unless private ones are allowed (tests, dev) or
    the address (or the IPv4 address it carries) is in ``extra_allowed``."""
    ip = parse(address)
    inner = embedded_ipv4(ip)
    judged = inner if inner is not None else ip
    if judged.is_unspecified or judged.is_multicast or ip.is_unspecified or ip.is_multicast:
        return False
    if allow_private or _in_any(ip, extra_allowed) or (inner is not None and _in_any(inner, extra_allowed)):
        return True
    return is_public(ip)


def is_loopback(address: str) -> bool:
    """True for a loopback IP address (v4 or v6); False for anything else, names included."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
