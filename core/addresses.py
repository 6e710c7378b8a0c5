"""Which IP addresses certmgr may connect to on a tenant's behalf (pure: no Django).

A webhook URL and a sales channel's hostname are typed by a tenant, and the platform connects
to them from inside its own network: pointed at a loopback, private, link-local or otherwise
non-public address, such a connection would reach internal services (server-side request
forgery). ``address_is_public()`` is the one rule for every such connection; its callers
resolve a name once, check every address it resolves to, and connect only to a checked one.

The rule, for an address as getaddrinfo() or a URL gives it:

* IPv4: globally reachable in IANA's special-purpose registry (``ipaddress``'s is_global:
  not 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.168/16, 198.18/15,
  the documentation ranges, 240/4...) and not multicast (224/4, which is_global accepts).
* IPv6 forms that carry an IPv4 address are judged by that IPv4 address, since it is where
  the packets end up: IPv4-mapped ``::ffff:a.b.c.d`` (RFC 4291, section 2.5.5.2), the NAT64
  well-known prefix ``64:ff9b::/96`` (RFC 6052) and 6to4 ``2002::/16`` (RFC 3056). Teredo
  ``2001::/32`` (RFC 4380) needs its server and its client address both public, and the
  IPv6 address public too.
* Any other IPv6 address must lie in global unicast ``2000::/3`` (RFC 4291, section 2.4) and be
  globally reachable there (is_global): everything outside it is refused, among them the
  IPv4-compatible ``::a.b.c.d`` (deprecated, RFC 4291 section 2.5.5.1), ``::`` and ``::1``,
  the IPv4-translated ``::ffff:0:a.b.c.d`` (RFC 2765), the local-use NAT64 prefix
  ``64:ff9b:1::/48`` (RFC 8215), unique-local, link-local, site-local and multicast.
* An address with a zone (``fe80::1%eth0``) is link-scoped by definition: refused.

Python 3.11's is_global alone gets several of these wrong (it calls ``::127.0.0.1``,
``64:ff9b::7f00:1``, ``2002:7f00:1::``, ``fec0::1``, ``ff0e::1`` and ``224.0.0.1`` global):
https://docs.python.org/3/library/ipaddress.html#ipaddress.IPv4Address.is_global and
https://www.iana.org/assignments/iana-ipv6-special-registry/ say what each range is.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def address_is_public(address: str | IPv4Address | IPv6Address) -> bool:
    """Whether certmgr may connect to `address` on a tenant's behalf (the module's rule).

    A string that is not an IP address is not public (ValueError is never raised).
    """
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return False
    if isinstance(address, IPv4Address):
        return _ipv4_is_public(address)
    return all(_ipv4_is_public(embedded) for embedded in _ipv6_embedded_ipv4(address)) and (
        _ipv6_is_public(address)
    )


def addresses_not_public(addresses) -> list[str]:
    """The addresses of `addresses` that are not public, as sorted, de-duplicated strings."""
    return sorted({str(address) for address in addresses if not address_is_public(address)})


def _ipv4_is_public(address: IPv4Address) -> bool:
    return address.is_global and not address.is_multicast


def _ipv6_embedded_ipv4(address: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address of one of the embedding forms leads to."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64_WELL_KNOWN:
        return [IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _SIX_TO_FOUR:
        return [address.sixtofour]
    if address in _TEREDO:
        server, client = address.teredo
        return [server, client]
    return []


def _ipv6_is_public(address: IPv6Address) -> bool:
    if address.scope_id:
        return False
    if address.ipv4_mapped is not None or address in _NAT64_WELL_KNOWN:
        return True  # judged by the IPv4 address it carries, checked beside this
    if address in _SIX_TO_FOUR:
        return True  # idem (and is_global of 2002::/16 varies across Python releases)
    return address in _GLOBAL_UNICAST and address.is_global and not address.is_multicast
