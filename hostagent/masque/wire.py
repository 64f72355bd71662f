"""Wire formats of CONNECT-UDP (RFC 9298) and HTTP Datagrams (RFC 9297), without I/O.

Everything that goes on the wire is built and parsed here, so the tests can hold
it byte for byte against the RFCs:

- QUIC variable-length integers (RFC 9000 section 16);
- capsules, ``Capsule { Type (i), Length (i), Value (..) }`` (RFC 9297 section 3.2),
  and the DATAGRAM capsule (type 0x00) that carries an HTTP Datagram payload;
- HTTP/3 datagrams, ``Quarter Stream ID (i)`` then the payload (RFC 9297 section 2.1);
- UDP proxying payloads, ``Context ID (i)`` then the UDP payload; context 0 is UDP
  (RFC 9298 section 5);
- URI Templates (RFC 6570 up to level 3, as RFC 9298 section 2 restricts them):
  expansion on the client, matching and target validation on the proxy;
- the ``Proxy-Status`` response header (RFC 9209) and structured-field booleans.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

#: Capsule type of the DATAGRAM capsule (RFC 9297 section 3.5).
CAPSULE_DATAGRAM = 0x00
#: Context ID of UDP payloads (RFC 9298 section 4).
CONTEXT_UDP = 0
#: Longest UDP payload an HTTP Datagram may carry with context 0 (RFC 9298 section 5).
MAX_UDP_PAYLOAD = 65527
#: HTTP/3 SETTINGS identifiers (RFC 9220 section 3, RFC 9297 section 5.1).
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x08
SETTINGS_H3_DATAGRAM = 0x33
#: HTTP/3 error code H3_DATAGRAM_ERROR (RFC 9297 section 5.2).
H3_DATAGRAM_ERROR = 0x33
#: The default URI Template path (RFC 9298 section 2, "default template").
DEFAULT_TEMPLATE_PATH = "/.well-known/masque/udp/{target_host}/{target_port}/"
UPGRADE_TOKEN = "connect-udp"

_VARINT_MAX = (1 << 62) - 1


class WireError(ValueError):
    """Bytes or text that do not follow the wire format."""


# -- variable-length integers (RFC 9000 section 16) ----------------------------------------

def encode_varint(value: int) -> bytes:
    """The shortest QUIC variable-length encoding of `value` (0 .. 2^62-1)."""
    if value < 0 or value > _VARINT_MAX:
        raise WireError(f"varint out of range: {value}")
    if value < 1 << 6:
        return value.to_bytes(1, "big")
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    if value < 1 << 30:
        return (value | 0x8000_0000).to_bytes(4, "big")
    return (value | 0xC000_0000_0000_0000).to_bytes(8, "big")


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """(value, offset after it); WireError when `data` ends inside the integer."""
    if offset >= len(data):
        raise WireError("truncated varint")
    first = data[offset]
    length = 1 << (first >> 6)
    if offset + length > len(data):
        raise WireError("truncated varint")
    value = first & 0x3F
    for i in range(1, length):
        value = (value << 8) | data[offset + i]
    return value, offset + length


# -- capsules (RFC 9297 section 3.2) -------------------------------------------------------

def encode_capsule(capsule_type: int, value: bytes) -> bytes:
    """One capsule: type, length, value."""
    return encode_varint(capsule_type) + encode_varint(len(value)) + value


def encode_datagram_capsule(payload: bytes, context_id: int = CONTEXT_UDP) -> bytes:
    """A DATAGRAM capsule whose HTTP Datagram payload is a UDP proxying payload."""
    return encode_capsule(CAPSULE_DATAGRAM, encode_udp_payload(payload, context_id))


class CapsuleParser:
    """Splits a request stream's data into capsules, whatever the chunking.

    `max_length` bounds one capsule's value so that a peer cannot make the parser
    buffer without limit; a longer one raises WireError (the caller aborts the stream).
    """

    def __init__(self, max_length: int = MAX_UDP_PAYLOAD + 16) -> None:
        self.max_length = max_length
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add stream data; the complete capsules it finished, as (type, value)."""
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        buf = self._buffer
        pos = 0
        while True:
            try:
                ctype, p = decode_varint(buf, pos)
                length, p = decode_varint(buf, p)
            except WireError:
                break
            if length > self.max_length:
                raise WireError(f"capsule of {length} bytes exceeds {self.max_length}")
            if p + length > len(buf):
                break
            out.append((ctype, bytes(buf[p:p + length])))
            pos = p + length
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete capsule held back."""
        return len(self._buffer)


# -- HTTP Datagrams (RFC 9297 section 2.1) and UDP payloads (RFC 9298 section 5) -----------

def encode_udp_payload(payload: bytes, context_id: int = CONTEXT_UDP) -> bytes:
    """HTTP Datagram payload of CONNECT-UDP: context ID, then the UDP payload."""
    if context_id == CONTEXT_UDP and len(payload) > MAX_UDP_PAYLOAD:
        raise WireError(f"UDP payload of {len(payload)} bytes exceeds {MAX_UDP_PAYLOAD}")
    return encode_varint(context_id) + payload


def decode_udp_payload(data: bytes) -> tuple[int, bytes]:
    """(context ID, payload) of an HTTP Datagram payload."""
    context_id, offset = decode_varint(data)
    return context_id, data[offset:]


def encode_h3_datagram(stream_id: int, http_payload: bytes) -> bytes:
    """A QUIC DATAGRAM frame's payload in HTTP/3: quarter stream ID, then the payload."""
    if stream_id % 4:
        raise WireError(f"stream {stream_id} is not a client-initiated bidirectional stream")
    return encode_varint(stream_id // 4) + http_payload


def decode_h3_datagram(data: bytes) -> tuple[int, bytes]:
    """(request stream ID, HTTP Datagram payload) of a QUIC DATAGRAM frame's payload."""
    quarter, offset = decode_varint(data)
    return quarter * 4, data[offset:]


# -- URI Templates (RFC 6570, restricted by RFC 9298 section 2) ----------------------------

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_VARNAME = re.compile(r"^[A-Za-z0-9_]+$")
_FORBIDDEN_OPERATORS = "+#./;"  # RFC 9298 section 2 forbids these expansions


def _pct(value: str) -> str:
    """RFC 6570 simple expansion: every character but the unreserved ones is pct-encoded."""
    return quote(value, safe="-._~")


def _expression(body: str) -> tuple[str, list[str]]:
    operator = body[:1] if body[:1] and not _VARNAME.match(body[:1]) else ""
    names = body[len(operator):].split(",")
    if operator and operator not in "?&":
        raise WireError(f"URI Template operator {operator!r} is not allowed by RFC 9298")
    for name in names:
        if not _VARNAME.match(name):
            raise WireError(f"bad URI Template variable {name!r} (modifiers are not supported)")
    return operator, names


def validate_template(template: str) -> None:
    """RFC 9298 section 2's requirements on a client's URI Template; WireError if unmet."""
    if any(not 0x21 <= ord(c) <= 0x7E for c in template):
        raise WireError("URI Template must be ASCII 0x21-0x7E")
    parts = urlsplit(_EXPRESSION.sub("x", template))
    if ("://" not in template or not parts.scheme or not parts.netloc
            or not parts.path.startswith("/")):
        raise WireError("URI Template must be absolute with a scheme, authority and path")
    authority_end = template.find("/", template.index("://") + 3)
    names: list[str] = []
    for match in _EXPRESSION.finditer(template):
        if match.start() < authority_end:
            raise WireError("template variables must be in the path or query")
        names += _expression(match.group(1))[1]
    for needed in ("target_host", "target_port"):
        if needed not in names:
            raise WireError(f"URI Template lacks {{{needed}}}")


def expand_template(template: str, variables: Mapping[str, str | int]) -> str:
    """RFC 6570 expansion (simple, "?" and "&" forms) of `template`."""

    def expand(match: re.Match[str]) -> str:
        operator, names = _expression(match.group(1))
        defined = [(n, str(variables[n])) for n in names if n in variables]
        if not operator:
            return ",".join(_pct(v) for _, v in defined)
        if not defined:
            return ""
        return operator + "&".join(f"{n}={_pct(v)}" for n, v in defined)

    return _EXPRESSION.sub(expand, template)


def udp_path(target_host: str, target_port: int,
             template_path: str = DEFAULT_TEMPLATE_PATH) -> str:
    """The request's :path for a target: the template's path (and query), expanded."""
    return expand_template(template_path, {"target_host": target_host,
                                           "target_port": target_port})


class TemplateMatcher:
    """Recovers the variables from a request's :path, for the proxy's URI Template.

    `template_path` is the template's path and query (the proxy is its own
    authority). Simple expressions match one path segment or query value; "?"
    and "&" expressions match their name=value pairs in order.
    """

    def __init__(self, template_path: str = DEFAULT_TEMPLATE_PATH) -> None:
        if not template_path.startswith("/"):
            raise WireError("the template path must start with '/'")
        pattern = ""
        pos = 0
        self.names: list[str] = []
        for match in _EXPRESSION.finditer(template_path):
            pattern += re.escape(template_path[pos:match.start()])
            operator, names = _expression(match.group(1))
            if not operator:
                if len(names) != 1:
                    raise WireError("a simple expression must hold one variable here")
                pattern += f"(?P<{names[0]}>[^/?&#]*)"
            else:
                pattern += re.escape(operator) + "&".join(
                    f"{re.escape(n)}=(?P<{n}>[^&#]*)" for n in names)
            self.names += names
            pos = match.end()
        pattern += re.escape(template_path[pos:])
        for needed in ("target_host", "target_port"):
            if needed not in self.names:
                raise WireError(f"URI Template lacks {{{needed}}}")
        self._regex = re.compile(pattern)

    def match(self, path: str) -> dict[str, str] | None:
        """The raw (still pct-encoded) variables of `path`, or None when it does not fit."""
        found = self._regex.fullmatch(path)
        return None if found is None else found.groupdict()


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Target:
    """A validated CONNECT-UDP target."""

    host: str  # a DNS name, or an IP address in its canonical text form
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # None for a DNS name


def parse_target(raw_host: str, raw_port: str) -> Target:
    """Percent-decode and validate target_host and target_port (RFC 9298 section 3).

    Hosts: IPv4 literals, IPv6 literals (their colons pct-encoded; brackets are
    tolerated; zone identifiers are not supported) and DNS names. Ports: decimal,
    1 to 65535. WireError says what is wrong.
    """
    try:
        host = unquote_to_bytes(raw_host).decode("ascii")
    except UnicodeDecodeError:
        raise WireError("target_host is not ASCII") from None
    if not raw_port.isascii() or not raw_port.isdigit() or len(raw_port) > 5:
        raise WireError(f"target_port {raw_port!r} is not a decimal port number")
    port = int(raw_port)
    if not 0 < port < 65536:
        raise WireError(f"target_port {port} out of range 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise WireError("empty target_host")
    if ":" in host:
        if "%" in host:
            raise WireError("IPv6 zone identifiers are not supported")
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(host)
        except ValueError:
            raise WireError(f"target_host {host!r} is not an IPv6 address") from None
        return Target(str(address), port, address)
    try:
        address = ipaddress.IPv4Address(host)
        return Target(str(address), port, address)
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if (len(name) > 253 or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise WireError(f"target_host {host!r} is neither an IP address nor a DNS name")
    return Target(name.lower(), port, None)


# -- header values ---------------------------------------------------------------------------

def proxy_status(error: str, details: str | None = None, proxy: str = "mp-proxy") -> str:
    """A Proxy-Status field value (RFC 9209): the proxy's name with an error type."""
    value = f"{proxy}; error={error}"
    if details:
        escaped = details.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in escaped)
        value += f'; details="{escaped}"'
    return value


def parse_proxy_status(value: str) -> dict[str, str]:
    """The parameters of a Proxy-Status member (enough to show an error to a user)."""
    params: dict[str, str] = {}
    for part in value.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key] = val
    return params


def sf_boolean(value: bytes | str | None) -> bool:
    """A structured-field boolean (RFC 8941): '?1' is true; anything else is false."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value is not None and value.strip().split(";")[0] == "?1"
