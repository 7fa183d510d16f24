"""Which address a request comes from, for rate limiting. Pure: no I/O, no framework import.

The socket peer is the answer, unless the peer is one of the operator's trusted proxies
(``CODETRACKR_TRUSTED_PROXIES``; none by default). Only then are the forwarding headers read, in
the seed's documented priority (:data:`DEFAULT_HEADERS`): ``CF-Connecting-IP``,
``True-Client-IP``, ``X-Forwarded-For``, ``X-Real-IP``, ``X-Client-IP``. Anyone can write these
headers, so from any other peer they are ignored: a client cannot pick its own bucket.

Where we depart from the seed: it takes the *first* ``X-Forwarded-For`` address. That entry is
whatever the client wrote before its request reached our proxy, so trusting it lets a client
spoof its address. We take the right-most address that is not a trusted proxy, which is the one
our own proxy chain saw connect (every header is read that way: all its instances, all its
comma-separated entries, right to left, skipping trusted proxies). If every entry is a trusted
proxy, the left-most is the client. A header whose chosen entry is not an IP address is skipped
for the next one in priority; with none usable, the peer (the proxy itself) is the answer.

A proxy in front of CodeTrackr must set or strip the headers it is trusted for; to read fewer of
them (e.g. only ``X-Forwarded-For`` behind nginx), set ``CODETRACKR_CLIENT_IP_HEADERS``.

:func:`rate_limit_key` groups IPv6 clients by /64: one host usually holds a whole /64, so
limiting single IPv6 addresses would be no limit at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = [
    "DEFAULT_HEADERS",
    "IpAddress",
    "IpNetwork",
    "parse_networks",
    "rate_limit_key",
    "resolve_client_ip",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HEADERS: tuple[str, ...] = (
    "CF-Connecting-IP",
    "True-Client-IP",
    "X-Forwarded-For",
    "X-Real-IP",
    "X-Client-IP",
)
UNKNOWN = "unknown"  # no peer address (e.g. a Unix socket): all such requests share one bucket
_MAX_ENTRIES = 64  # a longer forwarding chain is not worth walking


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` → networks. Raises ValueError naming a bad entry."""
    networks: list[IpNetwork] = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {text!r}") from None
    return tuple(networks)


def _parse_address(text: str) -> IpAddress | None:
    """An address as proxies write it: bare, ``v4:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IpAddress, proxies: Sequence[IpNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _from_header(entries: list[str], proxies: Sequence[IpNetwork]) -> IpAddress | None:
    """Right to left: the first entry that is not a trusted proxy; else the left-most."""
    chain = entries[-_MAX_ENTRIES:]
    for text in reversed(chain):
        address = _parse_address(text)
        if address is None:
            return None  # garbage where the client's address should be: do not guess past it
        if not _trusted(address, proxies):
            return address
    return _parse_address(chain[0]) if chain else None


def resolve_client_ip(
    peer: str | None,
    headers: Iterable[tuple[str, str]],
    trusted_proxies: Sequence[IpNetwork],
    header_names: Sequence[str] = DEFAULT_HEADERS,
) -> str:
    """The client's address as text (IPv4-mapped IPv6 shown as IPv4), or ``"unknown"``.

    ``headers`` are (name, value) pairs in the order received, names in any case; a header sent
    several times counts as one comma-separated list, in order.
    """
    address = _parse_address(peer) if peer else None
    if address is None:
        return peer or UNKNOWN
    if not trusted_proxies or not _trusted(address, trusted_proxies):
        return str(address)
    values: dict[str, list[str]] = {}
    wanted = {name.lower() for name in header_names}
    for name, value in headers:
        lowered = name.lower()
        if lowered in wanted:
            values.setdefault(lowered, []).extend(e for e in value.split(",") if e.strip())
    for name in header_names:
        entries = values.get(name.lower())
        if entries:
            found = _from_header(entries, trusted_proxies)
            if found is not None:
                return str(found)
    return str(address)


def rate_limit_key(client_ip: str) -> str:
    """The bucket of an address: itself for IPv4, its /64 for IPv6, the text for anything else."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
