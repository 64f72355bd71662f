"""Parsing of HOST:PORT arguments, shared by every command line."""

from __future__ import annotations


def parse_host_port(text: str) -> tuple[str, int]:
    """'HOST:PORT' or '[V6]:PORT' -> (host, port); ValueError with a clear message."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port must be a number in {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    return host, port
