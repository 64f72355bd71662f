"""The CONNECT-UDP proxy (RFC 9298) over aioquic HTTP/3: the slow path of `mp-proxy`.

One HTTP/3 server; each extended CONNECT request with ``:protocol = connect-udp``
whose path matches the URI Template opens a tunnel: one UDP socket connected to
the target, UDP payloads relayed as HTTP Datagrams (QUIC DATAGRAM frames) or
DATAGRAM capsules on the request stream. The outer connection is a
`ScheduledQuicConnection`: capsules of different tunnels leave in the order of
the proxy's stream scheduler, ranked by what each request declared
(``masque-rank``, else the RFC 9218 ``priority`` urgency).

Responses: 2xx opens the tunnel; 400 malformed request, template, host or port;
403 target outside the allow-list; 405/501 not CONNECT-UDP; 429 past the
per-client tunnel limit; 502 DNS failure or socket error. Every failure carries a
``Proxy-Status`` header (RFC 9209).

Fast path: a request with ``masque-fastpath: ?1`` is handed to `FastPathHook.request`.
The default hook (`NoController`) leaves the tunnel on the slow path;
`hostagent.masque.fastpath.ControllerFastPath` asks the controller's northbound
API to install the flow in the switch. Either way the response says what
happened (``masque-fastpath-status``), and a granted flow is closed with the tunnel.

QUIC-aware proxying (draft-ietf-masque-quic-proxy-06, `hostagent.masque.quic_proxy`):
a request with ``Proxy-QUIC-Forwarding`` exchanges connection-ID capsules; with
`ProxySettings.quic_forwarding` the proxy negotiates forwarded mode (identity
transform) and forwards short-header packets itself (`proxy_forwarding`), and
installs the same rules in any extra `ForwardingTable` (a switch).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import json
import logging
import re
import socket
import subprocess
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aioquic.h3.connection import ErrorCode, HeadersState
from aioquic.h3.events import DatagramReceived, DataReceived, H3Event, HeadersReceived
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)

from hostagent import congestion
from hostagent.certs import credential_files
from hostagent.masque.early_datagrams import EarlyDatagrams
from hostagent.masque.forwarding import (
    TO_TARGET,
    ForwardingRule,
    ForwardingTable,
    FourTuple,
    SoftwareForwarder,
)
from hostagent.masque.h3 import (
    MasqueH3Connection,
    datagram_fits,
    datagram_queue_full,
    outer_configuration,
)
from hostagent.masque.outer import OuterProtocol
from hostagent.masque.proxy_forwarding import (
    TABLE_CLOSE_WAIT_S,
    ForwardingQuicServer,
    TunnelForwarding,
    VcidAllocator,
    client_side_vcids,
    local_address_for,
    normalise,
    serve_forwarding,
)
from hostagent.masque.quic_proxy import (
    DEFAULT_MAX_ACTIVE_CIDS,
    ProtocolViolation,
    proxy_negotiate,
)
from hostagent.masque.quic_proxy_wire import (
    DRAFT,
    CapsuleError,
    is_cid_capsule,
    is_short_header,
)
from hostagent.masque.wire import (
    CAPSULE_DATAGRAM,
    CONTEXT_UDP,
    DEFAULT_TEMPLATE_PATH,
    H3_DATAGRAM_ERROR,
    MAX_UDP_PAYLOAD,
    UPGRADE_TOKEN,
    CapsuleParser,
    Target,
    TemplateMatcher,
    WireError,
    decode_udp_payload,
    encode_datagram_capsule,
    encode_udp_payload,
    parse_target,
    proxy_status,
    sf_boolean,
)
from hostagent.schedulers import ScheduledQuicConnection, StreamMeta, make_scheduler

log = logging.getLogger("mp-proxy")

MODES = ("datagram", "stream")
#: Request header choosing how the client wants UDP carried (this project's; see README).
MODE_HEADER = b"masque-mode"
#: Request header asking for the switch fast path (this project's).
FASTPATH_HEADER = b"masque-fastpath"
#: Request header: the IPv4 address:port the client will send shims from.
FASTPATH_SOURCE_HEADER = b"masque-fastpath-source"
#: Request header: DSCP tags the client writes per inner-stream priority ("46=0, 10=3").
FASTPATH_DSCP_HEADER = b"masque-fastpath-dscp"
#: Response header: "granted" or "slow-path".
FASTPATH_STATUS_HEADER = b"masque-fastpath-status"
#: Response header on the slow path: why (a structured-field string).
FASTPATH_REASON_HEADER = b"masque-fastpath-reason"
#: Response header when granted: the flow id to put in every shim.
FASTPATH_FLOW_HEADER = b"masque-fastpath-flow"
#: Response header when granted: the switch's fast-path address:port to send shims to.
FASTPATH_ADDRESS_HEADER = b"masque-fastpath-address"
#: Response header when granted: the proxy port the target sees (informative).
FASTPATH_PROXY_PORT_HEADER = b"masque-fastpath-proxy-port"
#: Request header with the tunnel's rank for the proxy's stream scheduler (this project's).
RANK_HEADER = b"masque-rank"
#: RFC 9209 Proxy-Status.
PROXY_STATUS_HEADER = b"proxy-status"
#: Seconds a request waits for the client's SETTINGS (which say whether it takes HTTP
#: Datagrams) before its tunnel is put in stream mode.
SETTINGS_WAIT = 3.0
#: Capsule bytes buffered per request stream while the proxy decides on the request.
MAX_EARLY_BYTES = 64 * 1024
NO_CONTROLLER_MESSAGE = ("fast path requested but no controller configured: "
                         "tunnel stays on the slow path")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """A request the proxy answers with an error status."""

    def __init__(self, status: int, error: str, details: str) -> None:
        super().__init__(f"{status} {error}: {details}")
        self.status, self.error, self.details = status, error, details


# -- who may be reached ----------------------------------------------------------------------

def local_addresses() -> set[Address]:
    """Every address configured on this host's (this namespace's) interfaces."""
    found: set[Address] = set()
    try:
        shown = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True,
                               timeout=5, check=True).stdout
        for link in json.loads(shown):
            for info in link.get("addr_info", []):
                with contextlib.suppress(ValueError, KeyError):
                    found.add(ipaddress.ip_address(info["local"]))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("could not list local addresses (%s); refusing only the listen address",
                    exc)
    return found


class AccessPolicy:
    """Which targets the proxy relays to: not an open relay.

    Without `allow`, every address except loopback, link-local, unspecified,
    multicast, reserved (broadcast included) and the proxy's own addresses. With
    `allow`, exactly the addresses inside those networks, whatever their kind
    (so a test can open 127.0.0.0/8 explicitly).
    """

    def __init__(self, allow: Iterable[str | Network] = (),
                 own: Iterable[Address] = ()) -> None:
        self.allow: list[Network] = [ipaddress.ip_network(n, strict=False) if isinstance(n, str)
                                     else n for n in allow]
        self.own = set(own)

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be reached, or None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.allow:
            if any(address.version == n.version and address in n for n in self.allow):
                return None
            return f"{address} is outside the allowed networks"
        for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved"):
            if getattr(address, f"is_{kind}"):
                return f"{address} is a {kind.replace('_', '-')} address"
        if address in self.own:
            return f"{address} is one of the proxy's own addresses"
        return None


# -- the fast-path hook ----------------------------------------------------------------------

Headers = list[tuple[bytes, bytes]]


class FastPathHook(Protocol):
    """Asked once per tunnel whose request carries ``masque-fastpath: ?1``.

    `request` returns the response headers that say whether the tunnel got the
    fast path (and its parameters), or None; it may be a coroutine (a controller
    call). A hook that granted a flow sets `tunnel.fastpath_flow`; `release` is
    then called once when the tunnel closes.
    """

    def request(self, tunnel: ProxyTunnel) -> Headers | None | Awaitable[Headers | None]:
        """Response headers with the fast-path outcome, or None."""

    def release(self, tunnel: ProxyTunnel) -> None:
        """The tunnel closed: give its flow back (a hook without flows does nothing)."""


def slow_path_headers(reason: str) -> Headers:
    """The response headers of a fast-path request left on the slow path, and why."""
    text = reason.replace("\\", "\\\\").replace('"', '\\"')
    text = "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)
    return [(FASTPATH_STATUS_HEADER, b"slow-path"),
            (FASTPATH_REASON_HEADER, f'"{text}"'.encode())]


class NoController:
    """The hook without a controller: logs and keeps every tunnel on the slow path."""

    def request(self, tunnel: ProxyTunnel) -> Headers | None:
        """Always the slow path, with the reason in the response."""
        log.info("tunnel %s: %s", tunnel.label, NO_CONTROLLER_MESSAGE)
        return slow_path_headers("no controller configured")

    def release(self, tunnel: ProxyTunnel) -> None:
        """Nothing was granted, nothing to give back."""


# -- tunnels ---------------------------------------------------------------------------------

@dataclass
class TunnelCounters:
    """Traffic of one tunnel, client->target ("up") and target->client ("down")."""

    up_packets: int = 0
    up_bytes: int = 0
    down_packets: int = 0
    down_bytes: int = 0
    #: of up/down_packets, those with a QUIC short header (an inner connection's 1-RTT
    #: packets, after its handshake): what forwarded mode could have taken off this host
    up_short_packets: int = 0
    down_short_packets: int = 0
    down_too_large: int = 0  # datagram mode: too large for a DATAGRAM frame, dropped
    down_queue_full: int = 0  # datagram mode: dropped, MAX_PENDING_DATAGRAMS already queued
    dropped_context: int = 0  # HTTP Datagrams with an unknown context ID
    ignored_capsules: int = 0  # capsules of unknown types
    forwarded_up_packets: int = 0  # forwarded mode: client->target, never seen by QUIC
    forwarded_up_bytes: int = 0
    forwarded_down_packets: int = 0  # forwarded mode: target->client, not relayed
    forwarded_down_bytes: int = 0


class _UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, tunnel: ProxyTunnel) -> None:
        self.tunnel = tunnel

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.tunnel.from_target(data)

    def error_received(self, exc: Exception) -> None:
        # RFC 9298 section 3.1: a socket the OS says is unusable closes the request stream.
        self.tunnel.close(f"socket error: {exc}")


@dataclass(eq=False)
class ProxyTunnel:
    """One CONNECT-UDP request stream and its UDP socket."""

    proto: ProxyProtocol
    stream_id: int
    target: Target
    address: Address
    mode: str
    rank: int
    fastpath_requested: bool
    opened_at: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    transport: asyncio.DatagramTransport | None = None
    counters: TunnelCounters = field(default_factory=TunnelCounters)
    closed: bool = False
    close_reason: str = ""
    #: the request's headers (the fast-path hook reads its parameters there)
    request_headers: dict[bytes, bytes] = field(default_factory=dict)
    #: the controller's flow id while the tunnel is on the fast path
    fastpath_flow: int | None = None
    #: connection-ID registrations (draft-ietf-masque-quic-proxy) when negotiated
    quic_proxy: TunnelForwarding | None = None
    #: the proxy-to-target 4-tuple as the target's packets arrive (set when forwarding)
    target_match: FourTuple | None = None

    @property
    def label(self) -> str:
        return f"{self.proto.peer_label}#{self.stream_id}->{self.target.host}:{self.target.port}"

    def from_client(self, payload: bytes) -> None:
        if self.closed or self.transport is None:
            return
        self.last_activity = time.monotonic()
        self.counters.up_packets += 1
        self.counters.up_bytes += len(payload)
        if is_short_header(payload):
            self.counters.up_short_packets += 1
        self.transport.sendto(payload)

    def from_target(self, payload: bytes) -> None:
        if self.closed:
            return
        self.last_activity = time.monotonic()
        if self.target_match is not None and self.proto.proxy.forwarder.forward(
                self.target_match, payload):
            return  # forwarded mode: rewritten and sent to the client, not relayed
        self.counters.down_packets += 1
        self.counters.down_bytes += len(payload)
        if is_short_header(payload):
            self.counters.down_short_packets += 1
        self.proto.send_udp(self, payload)

    def close(self, reason: str, *, end_stream: bool = True) -> None:
        """Close the socket and (unless the stream is already gone) the request stream."""
        if self.closed:
            return
        self.closed, self.close_reason = True, reason
        if self.transport is not None:
            self.transport.close()
        if self.fastpath_flow is not None:
            self.proto.proxy.fastpath.release(self)
        self.proto.tunnel_closed(self, end_stream)


# -- the HTTP/3 side -------------------------------------------------------------------------

def _headers(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for key, value in headers:
        out.setdefault(key, value)
    return out


_URGENCY = re.compile(r"(?:^|,)\s*u=(\d+)")


def request_rank(headers: dict[bytes, bytes]) -> int:
    """The tunnel's rank: ``masque-rank`` if given, else the RFC 9218 urgency, else 0."""
    raw = headers.get(RANK_HEADER)
    if raw is not None and raw.strip().isdigit():
        return int(raw)
    found = _URGENCY.search(headers.get(b"priority", b"").decode("ascii", "replace"))
    if found and int(found.group(1)) <= 7:
        return int(found.group(1))
    return 0


class ProxyProtocol(OuterProtocol):
    """One client's outer connection: HTTP/3 with CONNECT-UDP tunnels."""

    def __init__(self, quic: QuicConnection, *, proxy: MasqueProxy, **kwargs: Any) -> None:
        super().__init__(quic, **kwargs)
        self.proxy = proxy
        self.h3: MasqueH3Connection | None = None
        self.tunnels: dict[int, ProxyTunnel] = {}
        self.opening: set[int] = set()
        self._early: dict[int, bytearray] = {}  # capsule bytes that came before the 2xx
        #: HTTP Datagrams that came before their tunnel existed (RFC 9297 section 2.1)
        self._early_datagrams = EarlyDatagrams()
        self._parsers: dict[int, CapsuleParser] = {}
        self.peer_label = "?"
        self.peer_host: str | None = None  # the client's address, as this proxy sees it
        #: set once the client's SETTINGS arrived (or the connection ended)
        self.peer_settings = asyncio.Event()
        self._forwarding_addr: Any = None  # the client path the forwarding rules are bound to

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and self.h3 is None:
            self.h3 = MasqueH3Connection(self._quic)
            paths = self._quic._network_paths
            if paths:
                addr = paths[0].addr
                self.peer_label = f"{addr[0]}:{addr[1]}"
                self.peer_host = str(addr[0])
            self.proxy.connections.add(self)
        if isinstance(event, (StreamReset, StopSendingReceived)):
            tunnel = self.tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel.close("client reset the stream", end_stream=False)
                with contextlib.suppress(Exception):
                    self._quic.reset_stream(event.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        elif isinstance(event, ConnectionTerminated):
            for tunnel in list(self.tunnels.values()):
                tunnel.close("outer connection closed", end_stream=False)
            self.proxy.connections.discard(self)
        if self.h3 is not None:
            for h3_event in self.h3.handle_event(event):
                self._h3_event(h3_event)
            if self.h3.settings_received or isinstance(event, ConnectionTerminated):
                self.peer_settings.set()

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            if event.stream_id in self.tunnels or event.stream_id in self.opening:
                return  # trailers: nothing to do
            self.opening.add(event.stream_id)
            asyncio.ensure_future(self._open(event))
        elif isinstance(event, DataReceived):
            self._stream_data(event.stream_id, event.data, event.stream_ended)
        elif isinstance(event, DatagramReceived):
            tunnel = self.tunnels.get(event.stream_id)
            if tunnel is None:
                if not (self._may_be_pending(event.stream_id) and self._early_datagrams.add(
                        event.stream_id, event.data, time.monotonic())):
                    self.proxy.stats["datagrams_without_tunnel"] += 1
                return  # else kept until the tunnel opens (RFC 9298 section 5)
            self._udp_payload(tunnel, event.data)

    def _may_be_pending(self, stream_id: int) -> bool:
        """Whether a datagram for `stream_id` may belong to a request not yet answered: one
        being decided on, or a client-initiated bidirectional stream whose HEADERS the
        HTTP/3 layer has not seen (the datagram overtook them: aioquic writes DATAGRAM
        frames ahead of STREAM frames in a packet, and reports them first)."""
        if stream_id in self.opening:
            return True
        if stream_id % 4 != 0 or self._quic._stream_is_discarded(stream_id):
            return False
        assert self.h3 is not None
        h3_stream = self.h3._stream.get(stream_id)
        return h3_stream is None or h3_stream.headers_recv_state == HeadersState.INITIAL

    def _udp_payload(self, tunnel: ProxyTunnel, http_payload: bytes) -> None:
        try:
            context_id, payload = decode_udp_payload(http_payload)
        except WireError:
            tunnel.counters.dropped_context += 1
            return
        if context_id != CONTEXT_UDP:  # RFC 9298 section 4: unknown contexts are dropped
            tunnel.counters.dropped_context += 1
            return
        tunnel.from_client(payload)

    def _stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        tunnel = self.tunnels.get(stream_id)
        if tunnel is None:
            if stream_id in self.opening:
                early = self._early.setdefault(stream_id, bytearray())
                if len(early) + len(data) <= MAX_EARLY_BYTES:  # else dropped (RFC 9298 s. 5)
                    early.extend(data)
            return
        parser = self._parsers.setdefault(stream_id, CapsuleParser())
        try:
            capsules = parser.feed(data)
        except WireError as exc:
            self._abort(tunnel, f"bad capsule: {exc}")
            return
        for capsule_type, value in capsules:
            if capsule_type != CAPSULE_DATAGRAM:
                if tunnel.quic_proxy is not None and is_cid_capsule(capsule_type):
                    try:
                        tunnel.quic_proxy.capsule(capsule_type, value)
                    except CapsuleError as exc:
                        self._abort(tunnel, f"{DRAFT}: malformed capsule: {exc}")
                        return
                    except ProtocolViolation as exc:
                        self._abort(tunnel, f"{DRAFT}: {exc.reason}", exc.error_code)
                        return
                    if tunnel.closed:
                        return
                else:
                    tunnel.counters.ignored_capsules += 1  # RFC 9297 section 3.2
                continue
            if len(value) > MAX_UDP_PAYLOAD + 8:
                self._abort(tunnel, "DATAGRAM capsule longer than a UDP payload")
                return
            self._udp_payload(tunnel, value)
        if ended:
            if parser.pending:
                self._abort(tunnel, "stream ended inside a capsule")
            else:
                tunnel.close("client closed the stream")

    def _abort(self, tunnel: ProxyTunnel, reason: str,
               error_code: int = H3_DATAGRAM_ERROR) -> None:
        tunnel.close(reason, end_stream=False)
        with contextlib.suppress(Exception):
            self._quic.reset_stream(tunnel.stream_id, error_code)
            self._quic.stop_stream(tunnel.stream_id, error_code)
        self.kick()

    # -- opening ---------------------------------------------------------------------------
    async def _open(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        headers = _headers(event.headers)
        try:
            tunnel = await self.proxy.admit(self, sid, headers, event.stream_ended)
        except Refused as refused:
            self.opening.discard(sid)
            self._early.pop(sid, None)
            self.proxy.stats["datagrams_without_tunnel"] += self._early_datagrams.discard(sid)
            self.proxy.refused(self, sid, headers, refused)
            self._respond(sid, refused.status, [(PROXY_STATUS_HEADER, proxy_status(
                refused.error, refused.details).encode())], end_stream=True)
            return
        except Exception as exc:  # noqa: BLE001 - answer, never leave the request hanging
            self.opening.discard(sid)
            self.proxy.stats["datagrams_without_tunnel"] += self._early_datagrams.discard(sid)
            log.exception("stream %d: internal error", sid)
            self._respond(sid, 500, [(PROXY_STATUS_HEADER, proxy_status(
                "proxy_internal_error", str(exc)).encode())], end_stream=True)
            return
        extra = [(MODE_HEADER, tunnel.mode.encode())]
        if tunnel.fastpath_requested:
            try:
                answer = self.proxy.fastpath.request(tunnel)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:  # noqa: BLE001 - the slow path always works
                log.exception("tunnel %s: fast-path hook failed", tunnel.label)
                answer = slow_path_headers(f"fast-path hook failed: {exc}")
            extra += answer or []
        self.opening.discard(sid)
        if self._quic._close_event is not None or sid not in self._quic._streams:
            tunnel.close("stream gone before the response", end_stream=False)
            self.proxy.stats["datagrams_without_tunnel"] += self._early_datagrams.discard(sid)
            return
        negotiation = proxy_negotiate(headers, enabled=self.proxy.settings.quic_forwarding)
        extra += negotiation.headers
        self.tunnels[sid] = tunnel
        self.connection.set_stream_meta(sid, StreamMeta(priority=tunnel.rank))
        self._respond(sid, 200, [(b"capsule-protocol", b"?1"), *extra])
        if negotiation.extension or negotiation.reason:
            self.proxy.start_quic_proxy(tunnel, negotiation)
        self.proxy.opened(tunnel)
        early = self._early.pop(sid, None)
        if early:
            self._stream_data(sid, bytes(early), False)
        early_datagrams = self._early_datagrams.take(sid, time.monotonic())
        self.proxy.stats["early_datagrams_relayed"] += len(early_datagrams)
        for http_payload in early_datagrams:
            if sid in self.tunnels:  # a capsule above may have closed it
                self._udp_payload(tunnel, http_payload)

    def _respond(self, stream_id: int, status: int, headers: list[tuple[bytes, bytes]],
                 end_stream: bool = False) -> None:
        assert self.h3 is not None
        try:
            self.h3.send_headers(stream_id, [(b":status", str(status).encode()), *headers],
                                 end_stream=end_stream)
        except Exception as exc:  # noqa: BLE001 - the stream may have been reset meanwhile
            log.debug("stream %d: could not respond %d: %s", stream_id, status, exc)
        self.kick()

    # -- relaying --------------------------------------------------------------------------
    def send_udp(self, tunnel: ProxyTunnel, payload: bytes) -> None:
        """Carry a UDP payload from the target to the client in the tunnel's mode.

        In datagram mode a payload too large for one DATAGRAM frame is dropped and
        counted (RFC 9298 section 7.1: not sent as a DATAGRAM capsule), and so is one
        that finds MAX_PENDING_DATAGRAMS already waiting (a bounded queue, not seconds
        of delay).
        """
        assert self.h3 is not None
        http_payload = encode_udp_payload(payload)
        if tunnel.mode == "datagram" and self.h3.peer_datagrams:
            if not datagram_fits(self._quic, len(http_payload), tunnel.stream_id):
                tunnel.counters.down_too_large += 1
                log.debug("tunnel %s: dropped a %d-byte payload too large for a DATAGRAM "
                          "frame", tunnel.label, len(payload))
                return
            if datagram_queue_full(self._quic):
                tunnel.counters.down_queue_full += 1
                return
            self.h3.send_datagram(tunnel.stream_id, http_payload)
        else:
            try:
                self.h3.send_data(tunnel.stream_id, encode_datagram_capsule(payload),
                                  end_stream=False)
            except Exception as exc:  # noqa: BLE001 - stream reset under our feet
                tunnel.close(f"cannot send on the stream: {exc}", end_stream=False)
                return
        self.kick()

    def send_capsule(self, tunnel: ProxyTunnel, capsule: bytes) -> None:
        """Send an encoded capsule on the tunnel's request stream."""
        assert self.h3 is not None
        try:
            self.h3.send_data(tunnel.stream_id, capsule, end_stream=False)
        except Exception as exc:  # noqa: BLE001 - stream reset under our feet
            tunnel.close(f"cannot send on the stream: {exc}", end_stream=False)
            return
        self.kick()

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        """The QUIC stack's, then: forwarding rules follow a new validated client path."""
        super().datagram_received(data, addr)
        paths = self._quic._network_paths
        if paths and paths[0].is_validated and paths[0].addr != self._forwarding_addr:
            self._forwarding_addr = paths[0].addr
            client = normalise(paths[0].addr)
            local = self.proxy.client_facing_local(client)
            for tunnel in self.tunnels.values():
                if tunnel.quic_proxy is not None:
                    tunnel.quic_proxy.rebind(client, local)

    @property
    def peer_addr(self) -> Any:
        """The client's address as the QUIC stack holds it (for sendto)."""
        paths = self._quic._network_paths
        return paths[0].addr if paths else None

    def tunnel_closed(self, tunnel: ProxyTunnel, end_stream: bool) -> None:
        """Forget a closed tunnel; end its request stream when asked to."""
        self.tunnels.pop(tunnel.stream_id, None)
        self.proxy.stop_quic_proxy(tunnel)
        self._parsers.pop(tunnel.stream_id, None)
        if end_stream:
            with contextlib.suppress(Exception):
                self._quic.send_stream_data(tunnel.stream_id, b"", end_stream=True)
            self.kick()
        self.proxy.closed(tunnel)


# -- the proxy -------------------------------------------------------------------------------

@dataclass
class ProxySettings:
    """What `mp-proxy`'s flags configure."""

    allow: Sequence[str] = ()
    max_tunnels: int = 256  # per client connection
    idle_timeout: float = 120.0  # RFC 9298 section 3.1: SHOULD NOT be below two minutes
    template_path: str = DEFAULT_TEMPLATE_PATH
    scheduler: str = "rr"
    datagrams: bool = True  # offer H3_DATAGRAM / QUIC DATAGRAM frames
    quic_forwarding: bool = False  # negotiate forwarded mode (draft-ietf-masque-quic-proxy)
    max_connection_ids: int = DEFAULT_MAX_ACTIVE_CIDS  # active registrations per stream
    congestion_control: str = congestion.DEFAULT  # of the outer connections


class MasqueProxy:
    """The CONNECT-UDP proxy: admission, tunnels, idle sweeping and counters."""

    def __init__(self, settings: ProxySettings | None = None,
                 fastpath: FastPathHook | None = None,
                 forwarding_tables: Sequence[ForwardingTable] = ()) -> None:
        self.settings = settings or ProxySettings()
        if self.settings.max_connection_ids < 2:
            raise ValueError("max_connection_ids must be at least 2")
        make_scheduler(self.settings.scheduler)  # fail early on a bad name
        congestion.check(self.settings.congestion_control)
        self.matcher = TemplateMatcher(self.settings.template_path)
        self.fastpath: FastPathHook = fastpath or NoController()
        self.policy = AccessPolicy(self.settings.allow)
        self.connections: set[ProxyProtocol] = set()
        self.tunnels: set[ProxyTunnel] = set()
        self.stats: dict[str, int] = {
            "tunnels_opened": 0, "tunnels_closed": 0, "requests_refused": 0,
            "datagrams_without_tunnel": 0, "early_datagrams_relayed": 0,
            "up_packets": 0, "up_bytes": 0,
            "down_packets": 0, "down_bytes": 0, "up_short_packets": 0,
            "down_short_packets": 0, "forwarded_up_packets": 0,
            "forwarded_up_bytes": 0, "forwarded_down_packets": 0,
            "forwarded_down_bytes": 0}
        self.refusals: dict[int, int] = {}
        #: forwarded mode: the proxy's own forwarder, then any extra table (a switch)
        self.forwarder = SoftwareForwarder(self._send_forwarded)
        self.forwarding_tables: list[ForwardingTable] = [self.forwarder,
                                                         *forwarding_tables]
        self._forwarding_tunnels: dict[str, ProxyTunnel] = {}
        #: forwarding tables' calls still running (installs, removals), awaited on close
        self.table_calls: set[asyncio.Future[None]] = set()
        self._client_local: dict[str, tuple[str, int]] = {}
        self._bound: tuple[str, int] = ("", 0)
        self.server: ForwardingQuicServer | None = None
        self.port: int | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self, host: str, port: int, certificate: str | None = None,
                    private_key: str | None = None) -> int:
        """Serve HTTP/3 on host:port (0: any free port); the bound port."""
        config = outer_configuration(is_client=False, datagrams=self.settings.datagrams,
                                     congestion_control=self.settings.congestion_control)
        with credential_files(certificate, private_key) as (cert, key):
            config.load_cert_chain(cert, key)
        own = local_addresses()
        with contextlib.suppress(ValueError):
            own.add(ipaddress.ip_address(host))
        self.policy = AccessPolicy(self.settings.allow, own)
        scheduler = self.settings.scheduler

        def create(connection: QuicConnection, **kwargs: Any) -> ProxyProtocol:
            return ProxyProtocol(ScheduledQuicConnection.adopt(connection, scheduler),
                                 proxy=self, **kwargs)

        self.server = await serve_forwarding(host, port, configuration=config,
                                             create_protocol=create)
        self.server.forward = self._forward_from_client
        transport = self.server._transport
        assert transport is not None  # serve() returns a bound server
        self.port = transport.get_extra_info("sockname")[1]
        self._bound = (host, self.port)
        self._sweeper = asyncio.ensure_future(self._sweep())
        log.info("serving CONNECT-UDP on %s:%d (template %s, scheduler %s, allow %s, "
                 "max %d tunnels per client, idle timeout %g s)", host, self.port,
                 self.settings.template_path, scheduler,
                 ",".join(map(str, self.policy.allow)) or "default policy",
                 self.settings.max_tunnels, self.settings.idle_timeout)
        log.info("QUIC-aware proxying (%s): forwarded mode %s", DRAFT,
                 f"on (identity transform, {len(self.forwarding_tables)} forwarding "
                 f"table(s), up to {self.settings.max_connection_ids} connection IDs "
                 "per tunnel)" if self.settings.quic_forwarding
                 else "off (connection IDs acknowledged without virtual IDs)")
        return self.port

    # -- forwarded mode --------------------------------------------------------------------
    def start_quic_proxy(self, tunnel: ProxyTunnel, negotiation: Any) -> None:
        """After the 2xx of a request that negotiated the draft: registrations may begin."""
        if not negotiation.extension:
            log.info("tunnel %s: %s not used: %s", tunnel.label, DRAFT, negotiation.reason)
            return
        peer = tunnel.proto.peer_addr
        assert peer is not None
        client = normalise(peer)
        forwarding = TunnelForwarding(
            tunnel, negotiation,
            new_vcid=VcidAllocator(lambda client: self._client_side_cids(tunnel.proto,
                                                                         client)),
            max_active=self.settings.max_connection_ids, tables=self.forwarding_tables,
            client=client, client_local=self.client_facing_local(client),
            pending=self.table_calls)
        tunnel.quic_proxy = forwarding
        if negotiation.forwarding:
            target = forwarding.target_tuple()
            tunnel.target_match = FourTuple(target.dst, target.src)
            self._forwarding_tunnels[tunnel.label] = tunnel
            log.info("tunnel %s: forwarded mode, transform %s", tunnel.label,
                     negotiation.transform)
        else:
            log.info("tunnel %s: %s without forwarded mode: %s", tunnel.label, DRAFT,
                     negotiation.reason)
        forwarding.start()

    def stop_quic_proxy(self, tunnel: ProxyTunnel) -> None:
        """The tunnel closed: its mappings go (the draft: they last as long as the stream)."""
        if tunnel.quic_proxy is not None:
            tunnel.quic_proxy.close()
        tunnel.target_match = None
        self._forwarding_tunnels.pop(tunnel.label, None)

    def client_facing_local(self, client: tuple[str, int]) -> tuple[str, int]:
        """The proxy address:port a client sends to (resolved when bound to a wildcard)."""
        local = self._client_local.get(client[0])
        if local is None:
            local = self._client_local[client[0]] = local_address_for(self._bound, client)
        return local

    def _client_side_cids(self, proto: ProxyProtocol, client: bool) -> list[bytes]:
        """Connection IDs a new VCID for `proto`'s tunnels must not conflict with.

        Client VCIDs (`client`): this client's own outer CIDs and every client VCID in
        use or offered. Target VCIDs: the proxy's outer CIDs and every target VCID.
        VCIDs are kept unique across all clients, not just per 4-tuple.
        """
        known = list(client_side_vcids(self.forwarder, client))
        if not client:
            if self.server is not None:
                known += list(self.server._protocols)  # the proxy's own outer CIDs
            return known
        quic = proto._quic
        known += [quic._peer_cid.cid, *(c.cid for c in quic._peer_cid_available)]
        for other in self.connections:
            for tunnel in other.tunnels.values():
                if tunnel.quic_proxy is not None:
                    for entry in tunnel.quic_proxy.state.client_cids.values():
                        known += entry.pending
        return known

    def _forward_from_client(self, data: bytes, addr: Any) -> bool:
        if not len(self.forwarder):
            return False
        client = normalise(addr)
        return self.forwarder.forward(FourTuple(client, self.client_facing_local(client)),
                                      data)

    def _send_forwarded(self, rule: ForwardingRule, packet: bytes) -> None:
        tunnel = self._forwarding_tunnels.get(rule.tunnel)
        if tunnel is None or tunnel.closed:
            return
        tunnel.last_activity = time.monotonic()
        c = tunnel.counters
        if rule.direction == TO_TARGET:
            c.forwarded_up_packets += 1
            c.forwarded_up_bytes += len(packet)
            tunnel.proto.note_forwarded_activity()
            if tunnel.transport is not None:
                tunnel.transport.sendto(packet)
        else:
            c.forwarded_down_packets += 1
            c.forwarded_down_bytes += len(packet)
            server = self.server
            peer = tunnel.proto.peer_addr
            if server is not None and server._transport is not None and peer is not None:
                server._transport.sendto(packet, peer)

    async def close(self) -> None:
        """Close every tunnel (giving back their fast-path flows) and stop serving."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for tunnel in list(self.tunnels):
            tunnel.close("proxy shutting down")
        for proto in list(self.connections):
            proto.close()
        if self.server is not None:
            self.server.close()
        if self.table_calls:  # the closed tunnels' removals, before the controller goes
            _done, late = await asyncio.wait(set(self.table_calls),
                                            timeout=TABLE_CLOSE_WAIT_S)
            if late:
                log.warning("closing: %d forwarding-table call(s) unfinished after %g s; a "
                            "switch may keep those mappings", len(late), TABLE_CLOSE_WAIT_S)
        closing = getattr(self.fastpath, "aclose", None)
        if closing is not None:
            await closing()
        await asyncio.sleep(0)

    async def _sweep(self) -> None:
        period = max(0.05, min(1.0, self.settings.idle_timeout / 4))
        while True:
            await asyncio.sleep(period)
            limit = time.monotonic() - self.settings.idle_timeout
            # a tunnel on the fast path carries no traffic here: its request stream keeps it
            for tunnel in [t for t in self.tunnels
                           if t.last_activity < limit and t.fastpath_flow is None]:
                tunnel.close(f"idle for {self.settings.idle_timeout:g} s")

    # -- admission -------------------------------------------------------------------------
    async def admit(self, proto: ProxyProtocol, stream_id: int, headers: dict[bytes, bytes],
                    stream_ended: bool) -> ProxyTunnel:
        """Check a request and open its UDP socket; Refused says which error to answer."""
        method = headers.get(b":method")
        protocol = headers.get(b":protocol")
        if method != b"CONNECT":
            raise Refused(405, "http_request_error", "only CONNECT-UDP is served here")
        if protocol != UPGRADE_TOKEN.encode():
            raise Refused(501, "http_request_error",
                          f"unsupported :protocol {protocol!r}; this proxy serves connect-udp")
        if headers.get(b":scheme") != b"https":
            raise Refused(400, "http_request_error", ":scheme must be https")
        if not headers.get(b":authority") or not headers.get(b":path"):
            raise Refused(400, "http_request_error", ":authority and :path are required")
        if stream_ended:
            raise Refused(400, "http_request_error", "the request stream ended with the headers")
        if b"capsule-protocol" in headers and not sf_boolean(headers[b"capsule-protocol"]):
            raise Refused(400, "http_request_error", "capsule-protocol must be ?1")
        path = headers[b":path"].decode("ascii", "replace")
        found = self.matcher.match(path)
        if found is None:
            raise Refused(400, "http_request_error",
                          f"path {path!r} does not match {self.settings.template_path}")
        try:
            target = parse_target(found["target_host"], found["target_port"])
        except WireError as exc:
            raise Refused(400, "http_request_error", str(exc)) from None
        if len(proto.tunnels) + len(proto.opening) - 1 >= self.settings.max_tunnels:
            raise Refused(429, "connection_limit_reached",
                          f"at most {self.settings.max_tunnels} tunnels per client")
        address = target.address
        if address is None:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise Refused(502, "dns_error", f"{target.host}: {exc}") from None
            address = ipaddress.ip_address(infos[0][4][0])
        reason = self.policy.refusal(address)
        if reason is not None:
            raise Refused(403, "destination_ip_prohibited", reason)
        wanted = headers.get(MODE_HEADER, b"").decode("ascii", "replace").strip().lower()
        if wanted and wanted not in MODES:
            raise Refused(400, "http_request_error", f"masque-mode must be one of {MODES}")
        assert proto.h3 is not None
        if not proto.peer_settings.is_set():
            # A request can overtake the client's SETTINGS (another stream; a lost packet):
            # deciding without them would put a datagram client in stream mode, whose
            # capsules masque-go drops. RFC 9114 6.2.1: SETTINGS come first on the control
            # stream, so they are at most a retransmission away.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTINGS_WAIT):
                    await proto.peer_settings.wait()
        mode = "stream" if wanted == "stream" or not proto.h3.peer_datagrams else "datagram"
        tunnel = ProxyTunnel(proto, stream_id, target, address, mode, request_rank(headers),
                             sf_boolean(headers.get(FASTPATH_HEADER)), request_headers=headers)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpEndpoint(tunnel), remote_addr=(str(address), target.port))
        except OSError as exc:
            raise Refused(502, "destination_ip_unroutable", str(exc)) from None
        tunnel.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and address.version == 4:
            # RFC 9298 section 3.1: no IP fragmentation; set DF (IP_MTU_DISCOVER = DO).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, 10, 2)
        return tunnel

    # -- bookkeeping and logs --------------------------------------------------------------
    def opened(self, tunnel: ProxyTunnel) -> None:
        """Count and log a tunnel that answered 2xx."""
        self.tunnels.add(tunnel)
        self.stats["tunnels_opened"] += 1
        if tunnel.fastpath_flow is not None:
            fastpath = f" fast path flow {tunnel.fastpath_flow}"
        else:
            fastpath = " fast path requested, slow path" if tunnel.fastpath_requested else ""
        log.info("tunnel open %s mode %s rank %d%s (open %d, opened %d, closed %d)",
                 tunnel.label, tunnel.mode, tunnel.rank, fastpath,
                 len(self.tunnels), self.stats["tunnels_opened"], self.stats["tunnels_closed"])

    def closed(self, tunnel: ProxyTunnel) -> None:
        """Count and log a tunnel that closed (its socket is closed already)."""
        if tunnel not in self.tunnels:
            return
        self.tunnels.discard(tunnel)
        self.stats["tunnels_closed"] += 1
        c = tunnel.counters
        for key in ("up_packets", "up_bytes", "down_packets", "down_bytes",
                    "up_short_packets", "down_short_packets", "forwarded_up_packets",
                    "forwarded_up_bytes", "forwarded_down_packets", "forwarded_down_bytes"):
            self.stats[key] += getattr(c, key)
        forwarded = (f", forwarded up {c.forwarded_up_packets} pkts/{c.forwarded_up_bytes} B"
                     f" down {c.forwarded_down_packets} pkts/{c.forwarded_down_bytes} B"
                     if tunnel.target_match is not None or c.forwarded_up_packets
                     or c.forwarded_down_packets else "")
        log.info("tunnel close %s (%s) after %.1f s: up %d pkts/%d B, down %d pkts/%d B%s, "
                 "too large %d, queue full %d, unknown contexts %d, unknown capsules %d "
                 "(open %d, opened %d, closed %d)", tunnel.label, tunnel.close_reason,
                 time.monotonic() - tunnel.opened_at, c.up_packets, c.up_bytes,
                 c.down_packets, c.down_bytes, forwarded, c.down_too_large, c.down_queue_full,
                 c.dropped_context, c.ignored_capsules, len(self.tunnels),
                 self.stats["tunnels_opened"], self.stats["tunnels_closed"])

    def refused(self, proto: ProxyProtocol, stream_id: int, headers: dict[bytes, bytes],
                refused: Refused) -> None:
        """Count and log a refused request."""
        self.stats["requests_refused"] += 1
        self.refusals[refused.status] = self.refusals.get(refused.status, 0) + 1
        log.info("request refused %s#%d %s: %d %s (%s)", proto.peer_label, stream_id,
                 headers.get(b":path", b"").decode("ascii", "replace"), refused.status,
                 refused.error, refused.details)
