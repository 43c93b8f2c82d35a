"""Which hosts an http(s) URL given by a caller may reach: not loopback, link-local or private
addresses (no SSRF through the service), unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


def private_host(host: str) -> bool:
    """Whether ``host`` resolves to any address that is not on the public internet;
    unresolvable hosts count as private (refused rather than guessed)."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return True
    return any(not ipaddress.ip_address(address.split("%")[0]).is_global for address in found)


def refusal(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not be reached, or None: it must be http(s), and its host public unless
    ``allow_private``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    if not allow_private and private_host(parts.hostname):
        return f"host {parts.hostname!r} is a private, loopback or link-local address"
    return None
