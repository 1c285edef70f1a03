"""The SSRF guard of webhook deliveries: only http(s), and only to public addresses unless the
operator allows private ones (``[webhooks] allow_private``).

A host is resolved and EVERY address it resolves to must be public: loopback, private,
link-local, multicast, unspecified and reserved addresses are refused in v4 and v6, and an
IPv4-mapped v6 address is judged by its v4 address. Spellings such as ``localhost.``,
``2130706433`` or ``0177.0.0.1`` resolve to what they mean, so checking what they resolve to
catches them. The check runs at creation and again at each delivery, and the delivery connects
to the address that was checked (``PinnedResolver``), so a DNS answer that changes between the
check and the connection cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(BadRequest):
    """A webhook URL that may not be delivered to."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: its host and port, and the address a delivery connects to."""

    url: str
    host: str
    port: int
    address: str


def is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_unspecified or ip.is_reserved)


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; 400 for anything else."""
    if not isinstance(url, str) or len(url) > 2048:
        raise UnsafeURL("'url' must be an http(s) URL of at most 2048 characters", param="url")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"'url' is not a valid URL: {exc}", param="url") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("'url' must be an http:// or https:// URL with a host", param="url")
    if parts.username or parts.password:
        raise UnsafeURL("'url' must not carry credentials", param="url")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, allow_private: bool) -> Target:
    """The URL's target, once every address its host resolves to is allowed; 400 otherwise."""
    _, host, port = split_url(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnsafeURL(f"The host '{host}' does not resolve", param="url") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnsafeURL(f"The host '{host}' does not resolve", param="url")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
                raise UnsafeURL(
                    f"The host '{host}' resolves to {address}, a loopback, private, link-local, "
                    "multicast or reserved address: webhooks go to public addresses only",
                    param="url")
    return Target(url, host, port, addresses[0])


class PinnedResolver(AbstractResolver):
    """Resolves the checked host to the checked address, and nothing else."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != self.target.host:
            raise OSError(f"{host} was not checked")
        ip = ipaddress.ip_address(self.target.address.split("%", 1)[0])
        found: Any = {"hostname": host, "host": str(ip), "port": port or self.target.port,
                      "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                      "proto": 0, "flags": socket.AI_NUMERICHOST}
        return [found]

    async def close(self) -> None:
        return None
