"""The client's address for login throttling: the peer, or what the trusted proxy saw."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """`REMOTE_ADDR`; with `TRUSTED_PROXY`, the last `X-Forwarded-For` entry.

    The proxy in front appends the address of the peer it served, so the last entry is the
    only one it vouches for: anything to its left came from the client, who could write any
    address there and so escape a lockout per address. Without a trusted proxy the header is
    the client's own text and is ignored.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    if not settings.TRUSTED_PROXY:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if not hops or not hops[-1]:
        return peer
    try:
        return str(ipaddress.ip_address(hops[-1]))
    except ValueError:
        return peer
