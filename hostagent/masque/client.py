"""The CONNECT-UDP client: one outer HTTP/3 connection, many tunnels, inner QUIC inside.

    async with MasqueClient("10.0.0.2", 4433, scheduler="abs") as client:
        tunnel = await client.open_udp("10.0.1.2", 4433, mode="stream",
                                       meta=StreamMeta(priority=1))
        inner = await tunnel.quic(alpn="mp-echo", scheduler="abs")
        answer = await inner.request(b"x" * 1000, StreamMeta(priority=3))

Nested scheduling: the outer connection is a `ScheduledQuicConnection` whose
streams are the CONNECT-UDP request streams, one per tunnel, each registered
with the `StreamMeta` given to `open_udp` (which is also sent to the proxy as
``masque-rank`` and as an RFC 9218 ``priority`` urgency, so that the proxy ranks
the return direction the same way). Each inner connection has its own
scheduler for its own streams.

Modes, chosen per tunnel by the client: ``datagram`` (HTTP Datagrams in QUIC
DATAGRAM frames; used only when the proxy negotiated SETTINGS_H3_DATAGRAM, else
the tunnel falls back to stream mode) and ``stream`` (DATAGRAM capsules on the
request stream, so tunnel traffic is reliable, ordered and scheduled by the outer
stream scheduler). The choice is sent in the ``masque-mode`` request header and
the proxy confirms it in the response. In datagram mode a packet too large for one
DATAGRAM frame is dropped and counted (`too_large`), as both ends do (RFC 9298
section 7.1); the proxy still accepts capsules in either mode (RFC 9297 section 3.5).

Fast path: with ``fastpath=True`` the client binds a UDP socket (the source it
declares in ``masque-fastpath-source``) before asking; when the proxy answers
``masque-fastpath-status: granted`` with a flow id and the switch's address, the
tunnel's payloads go in the shim (`hostagent.shim`) from that socket straight to
the switch, and shims coming back are unwrapped and delivered as if the proxy
had relayed them. The request stream stays open: closing it closes the flow, and
anything the proxy still relays on it is delivered too. Otherwise the tunnel
stays on the slow path and `fastpath_reason` says why.

Forwarded mode (draft-ietf-masque-quic-proxy-06): with ``quic_forwarding=True``
`open_udp` asks for it (``Proxy-QUIC-Forwarding``, identity transform); if the
proxy agrees, the inner connection's connection IDs are registered as they appear
and retire, and its short-header packets with a target VCID leave on the outer
connection's 4-tuple instead of the tunnel (`client_forwarding`). Anything else,
and any refusal, stays in the tunnel.

An inner QUIC connection is a sans-I/O aioquic connection pumped by hand
(`datagrams_to_send`, `get_timer`/`handle_timer`, `receive_datagram`) and
"connected" to `PLACEHOLDER_ADDR`, a fixed non-IP address: aioquic clients drop
datagrams from addresses they do not know, so every received datagram is given
the same one, and a non-IP address also rules out preferred-address migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

from aioquic.asyncio import connect
from aioquic.h3.events import DatagramReceived, DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)

from hostagent import congestion
from hostagent.masque.client_forwarding import (
    ClientVcidIndex,
    TunnelForwardingClient,
    adopt_initial_cid,
    early_client_cid,
)
from hostagent.masque.fastpath import (
    FastPathCounters,
    FastPathSocket,
    format_dscp_map,
    local_address_towards,
)
from hostagent.masque.h3 import (
    MasqueH3Connection,
    datagram_fits,
    datagram_queue_full,
    outer_configuration,
)
from hostagent.masque.outer import OuterProtocol
from hostagent.masque.proxy import (
    FASTPATH_ADDRESS_HEADER,
    FASTPATH_DSCP_HEADER,
    FASTPATH_FLOW_HEADER,
    FASTPATH_HEADER,
    FASTPATH_REASON_HEADER,
    FASTPATH_SOURCE_HEADER,
    FASTPATH_STATUS_HEADER,
    MODE_HEADER,
    MODES,
    RANK_HEADER,
)
from hostagent.masque.quic_proxy import (
    ProtocolViolation,
    TransformNotOffered,
    client_interpret,
    client_request_headers,
)
from hostagent.masque.quic_proxy_wire import DRAFT, CapsuleError, is_cid_capsule
from hostagent.masque.target import ECHO_ALPN, echo_configuration
from hostagent.masque.wire import (
    CAPSULE_DATAGRAM,
    CONTEXT_UDP,
    DEFAULT_TEMPLATE_PATH,
    UPGRADE_TOKEN,
    CapsuleParser,
    WireError,
    decode_udp_payload,
    encode_datagram_capsule,
    encode_udp_payload,
    parse_proxy_status,
    udp_path,
)
from hostagent.schedulers import ScheduledQuicConnection, StreamMeta, StreamScheduler

log = logging.getLogger("mp-client")

#: The address every inner connection is "connected" to (not an IP address on purpose).
PLACEHOLDER_ADDR = ("masque-tunnel", 0)
#: Seconds between the outer connection's PINGs while a tunnel is in forwarded mode: the
#: outer connection may carry nothing else then, and a PING both keeps it alive (the
#: draft's advice) and shows the proxy a new client path after a NAT rebinding, so
#: that its forwarding rules follow within about this long.
FORWARDING_KEEPALIVE = 1.0
#: Response header with the granted flow id (the other fast-path headers: proxy.py).
FASTPATH_RESPONSE_HEADER = FASTPATH_FLOW_HEADER


class MasqueError(Exception):
    """The proxy or the outer connection failed us."""


class TunnelRefused(MasqueError):
    """The proxy answered a CONNECT-UDP request with a non-2xx status."""

    def __init__(self, status: int, headers: dict[bytes, bytes]) -> None:
        self.status = status
        self.headers = headers
        self.proxy_status = parse_proxy_status(
            headers.get(b"proxy-status", b"").decode("ascii", "replace"))
        detail = self.proxy_status.get("details") or self.proxy_status.get("error", "")
        super().__init__(f"proxy refused the tunnel: {status} {detail}".rstrip())


class _ClientProtocol(OuterProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = MasqueH3Connection(self._quic)
        self.settings = asyncio.Event()
        self.terminated = asyncio.Event()
        self.responses: dict[int, asyncio.Future[tuple[dict[bytes, bytes], bool]]] = {}
        self.tunnels: dict[int, UdpTunnel] = {}
        self._kick_pending = False
        #: forwarded mode: client VCIDs of every tunnel, to recognise forwarded packets
        self.vcid_index = ClientVcidIndex()
        self._keepalive: asyncio.Task[None] | None = None

    def start_keepalive(self) -> None:
        """PING the proxy every FORWARDING_KEEPALIVE s while a tunnel is in forwarded mode."""
        if self._keepalive is None or self._keepalive.done():
            self._keepalive = asyncio.ensure_future(self._keep_alive())

    async def _keep_alive(self) -> None:
        uid = 0
        while not self.terminated.is_set():
            await asyncio.sleep(FORWARDING_KEEPALIVE)
            if not any(t.forwarding for t in self.tunnels.values()):
                return
            uid += 1
            self._quic.send_ping(uid)
            self.transmit()

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        """Forwarded packets (a client VCID, from the proxy) go to their inner connection;
        everything else to the outer QUIC connection."""
        if len(self.vcid_index) and isinstance(data, bytes) and self._from_proxy(addr):
            hit = self.vcid_index.match(data)
            if hit is not None:
                tunnel, packet = hit
                self.note_forwarded_activity()
                tunnel._forwarded_in(packet)
                return
        super().datagram_received(data, addr)

    def _from_proxy(self, addr: Any) -> bool:
        paths = self._quic._network_paths
        return bool(paths) and tuple(addr[:2]) == tuple(paths[0].addr[:2])

    def send_forwarded(self, packet: bytes) -> None:
        """Send a forwarded-mode packet on the outer connection's own 4-tuple."""
        paths = self._quic._network_paths
        if paths and self._transport is not None:
            self._transport.sendto(packet, paths[0].addr)

    def outer_cids(self) -> list[bytes]:
        """The client's connection IDs on the outer connection (the proxy's DCIDs to us)."""
        return [c.cid for c in self._quic._host_cids]

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamReset):
            tunnel = self.tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel._closed_by_peer(f"the proxy reset the stream "
                                       f"(error {event.error_code:#x})")
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)
        if self.h3.settings_received and not self.settings.is_set():
            self.settings.set()
        if isinstance(event, ConnectionTerminated):
            self.terminated.set()
            self.settings.set()
            if self._keepalive is not None:
                self._keepalive.cancel()
            for fut in self.responses.values():
                if not fut.done():
                    fut.set_exception(MasqueError(f"connection closed: {event.reason_phrase}"))
            for tunnel in list(self.tunnels.values()):
                tunnel._closed_by_peer("outer connection closed")

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            fut = self.responses.pop(event.stream_id, None)
            if fut is not None and not fut.done():
                headers: dict[bytes, bytes] = {}
                for key, value in event.headers:
                    headers.setdefault(key, value)
                fut.set_result((headers, event.stream_ended))
        elif isinstance(event, DataReceived):
            tunnel = self.tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel._stream_data(event.data, event.stream_ended)
        elif isinstance(event, DatagramReceived):
            tunnel = self.tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel._http_datagram(event.data)


class UdpTunnel:
    """One CONNECT-UDP tunnel: send and receive UDP payloads to and from its target."""

    def __init__(self, client: MasqueClient, stream_id: int, host: str, port: int, mode: str,
                 meta: StreamMeta) -> None:
        self.client = client
        self.stream_id = stream_id
        self.host, self.port = host, port
        self.mode = mode
        self.meta = meta
        #: fast path: None when not asked for; else "slow path" or the granted parameters
        self.fastpath: str | None = None
        #: why the proxy left the tunnel on the slow path ("" when granted or not asked)
        self.fastpath_reason = ""
        #: the flow id the shims carry, while on the fast path
        self.fastpath_flow: int | None = None
        #: priority level -> DSCP that inner packets are tagged with on the fast path
        self.fastpath_dscp: dict[int, int] = {}
        self._fastpath: FastPathSocket | None = None
        #: called with each received UDP payload; without it payloads queue for `recv()`
        self.on_receive: Callable[[bytes], None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.sent = self.received = self.too_large = self.queue_full = 0
        self.dropped_context = 0
        self._queue: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._parser = CapsuleParser()
        #: forwarded mode (draft-ietf-masque-quic-proxy), when the proxy agreed to it
        self.quic_proxy: TunnelForwardingClient | None = None
        #: why the tunnel is not in forwarded mode ("" when it is, or was not asked for)
        self.quic_forwarding_reason = ""
        #: the draft's capsules that came before the response was read
        self._early_cid_capsules: list[tuple[int, bytes]] | None = None
        #: the inner connection's initial client CID, registered with the request
        self._initial_cid: bytes | None = None

    def __repr__(self) -> str:
        return f"<UdpTunnel #{self.stream_id} {self.host}:{self.port} {self.mode}>"

    @property
    def on_fastpath(self) -> bool:
        """Whether payloads go through the switch's fast path (shim) rather than the proxy."""
        return self._fastpath is not None and self.fastpath_flow is not None

    @property
    def fastpath_counters(self) -> FastPathCounters:
        """Shim packets sent and received, malformed and foreign shims dropped."""
        return self._fastpath.counters if self._fastpath is not None else FastPathCounters()

    def counters(self) -> dict[str, int]:
        """Every counter of the tunnel: the slow path's, the fast path's (``fp_``) and
        forwarded mode's (``fwd_``)."""
        fwd_received = self.quic_proxy.counters.received if self.quic_proxy else 0
        out = {"sent": self.sent, "received": self.received,
               "too_large": self.too_large, "queue_full": self.queue_full,
               "dropped_context": self.dropped_context,
               "via_proxy": self.received - self.fastpath_counters.received - fwd_received}
        out.update({f"fp_{k}": v for k, v in vars(self.fastpath_counters).items()})
        if self.quic_proxy is not None:
            out.update({f"fwd_{k}": v for k, v in vars(self.quic_proxy.counters).items()
                        if isinstance(v, int)})
        return out

    @property
    def forwarding(self) -> bool:
        """Whether the proxy agreed to forwarded mode for this tunnel."""
        return self.quic_proxy is not None and self.quic_proxy.outcome.forwarding

    def send_inner(self, packet: bytes, priority: int | None = None) -> None:
        """Send an inner QUIC packet: forwarded when it has a target VCID, else tunnelled."""
        if self.quic_proxy is not None and not self.closed.is_set():
            forwarded = self.quic_proxy.outgoing(packet)
            if forwarded is not None:
                self.sent += 1
                self.client._proto.send_forwarded(forwarded)
                return
        self.send(packet, priority)

    def _forwarded_in(self, packet: bytes) -> None:
        if self.quic_proxy is not None:
            self.quic_proxy.received(packet)
        self._deliver(packet)

    def _send_capsule(self, capsule: bytes) -> None:
        proto = self.client._proto
        try:
            proto.h3.send_data(self.stream_id, capsule, end_stream=False)
        except Exception as exc:  # noqa: BLE001 - the proxy stopped or reset the stream
            self._closed_by_peer(f"cannot send on the stream: {exc}")
            return
        proto.kick()

    def _start_forwarding(self, answer: dict[bytes, bytes]) -> None:
        """Read the proxy's answer to Proxy-QUIC-Forwarding; TransformNotOffered aborts."""
        early, self._early_cid_capsules = self._early_cid_capsules or [], None
        outcome = client_interpret(answer)
        if not outcome.forwarding:
            self.quic_forwarding_reason = outcome.reason
            log.info("tunnel %s:%d: forwarded mode refused, tunnelled: %s", self.host,
                     self.port, outcome.reason)
            return
        proto = self.client._proto
        self.quic_proxy = TunnelForwardingClient(
            self, outcome, send_capsule=self._send_capsule, index=proto.vcid_index,
            outer_cids=proto.outer_cids)
        log.info("tunnel %s:%d: forwarded mode (%s, transform %s)", self.host, self.port,
                 DRAFT, outcome.transform)
        if self._initial_cid is not None:
            self.quic_proxy.registered_early(self._initial_cid)
        proto.start_keepalive()
        for capsule_type, value in early:
            if not self._cid_capsule(capsule_type, value):
                return

    def _cid_capsule(self, capsule_type: int, value: bytes) -> bool:
        """Hand a capsule of the draft to forwarded mode; False if the stream was reset."""
        if self._early_cid_capsules is not None:
            self._early_cid_capsules.append((capsule_type, value))
            return True
        if self.quic_proxy is None:
            return True  # not negotiated: an unknown capsule, ignored (RFC 9297)
        try:
            self.quic_proxy.capsule(capsule_type, value)
        except (CapsuleError, ProtocolViolation) as exc:
            code = exc.error_code if isinstance(exc, ProtocolViolation) else 0x33
            self._reset(f"{DRAFT}: {exc}", code)
            return False
        return True

    def _reset(self, reason: str, error_code: int) -> None:
        proto = self.client._proto
        with contextlib.suppress(Exception):
            proto._quic.reset_stream(self.stream_id, error_code)
            proto._quic.stop_stream(self.stream_id, error_code)
        self._closed_by_peer(reason)
        proto.kick()

    def _dscp_for(self, priority: int | None) -> int | None:
        """The DSCP of the most urgent declared level at or after `priority`."""
        if priority is None or not self.fastpath_dscp:
            return None
        levels = [p for p in self.fastpath_dscp if p >= priority]
        return self.fastpath_dscp[min(levels)] if levels else None

    # -- sending ---------------------------------------------------------------------------
    def send(self, payload: bytes, priority: int | None = None) -> None:
        """Send one UDP payload to the target (dropped silently once the tunnel closed).

        On the fast path it goes in the shim to the switch; `priority` (the most
        urgent inner stream the packet serves) picks its DSCP tag from `fastpath_dscp`.
        """
        if self.closed.is_set():
            return
        if self._fastpath is not None and self.fastpath_flow is not None:
            self._fastpath.send(payload, self._dscp_for(priority))
            self.sent += 1
            return
        proto = self.client._proto
        http_payload = encode_udp_payload(payload)
        if self.mode == "datagram" and proto.h3.peer_datagrams:
            if not datagram_fits(proto._quic, len(http_payload), self.stream_id):
                # RFC 9298 section 7.1: dropped like a UDP packet over the path MTU, not
                # carried reliably in a capsule (which masque-go's proxy would drop anyway)
                self.too_large += 1
                return
            if datagram_queue_full(proto._quic):  # a bounded queue, as at the proxy
                self.queue_full += 1
                return
            proto.h3.send_datagram(self.stream_id, http_payload)
        else:
            try:
                proto.h3.send_data(self.stream_id, encode_datagram_capsule(payload),
                                   end_stream=False)
            except Exception as exc:  # noqa: BLE001 - the proxy stopped or reset the stream
                self._closed_by_peer(f"cannot send on the stream: {exc}")
                return
        self.sent += 1
        proto.kick()

    def close(self) -> None:
        """End the request stream: the proxy closes the target socket."""
        if self.closed.is_set():
            return
        self.close_reason = "closed by the client"
        self.closed.set()
        self._stop_fastpath()
        if self.quic_proxy is not None:
            self.quic_proxy.close()
        proto = self.client._proto
        with contextlib.suppress(Exception):
            proto.h3.send_data(self.stream_id, b"", end_stream=True)
        proto.tunnels.pop(self.stream_id, None)
        proto.kick()

    # -- receiving -------------------------------------------------------------------------
    async def recv(self, timeout: float | None = None) -> bytes:
        """The next UDP payload from the target; TimeoutError, or MasqueError once closed."""
        async with asyncio.timeout(timeout):
            while not self._queue:
                if self.closed.is_set():
                    raise MasqueError(f"tunnel closed: {self.close_reason}")
                self._ready.clear()
                waiter = asyncio.ensure_future(self._ready.wait())
                closer = asyncio.ensure_future(self.closed.wait())
                try:
                    await asyncio.wait({waiter, closer}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    closer.cancel()
        return self._queue.popleft()

    def _deliver(self, payload: bytes) -> None:
        self.received += 1
        if self.on_receive is not None:
            self.on_receive(payload)
        else:
            self._queue.append(payload)
            self._ready.set()

    def _http_datagram(self, http_payload: bytes) -> None:
        try:
            context_id, payload = decode_udp_payload(http_payload)
        except WireError:
            self.dropped_context += 1
            return
        if context_id != CONTEXT_UDP:
            self.dropped_context += 1
            return
        self._deliver(payload)

    def _stream_data(self, data: bytes, ended: bool) -> None:
        try:
            capsules = self._parser.feed(data)
        except WireError as exc:
            self._closed_by_peer(f"bad capsule: {exc}")
            return
        for capsule_type, value in capsules:
            if capsule_type == CAPSULE_DATAGRAM:
                self._http_datagram(value)
            elif is_cid_capsule(capsule_type) and not self._cid_capsule(capsule_type, value):
                return
        if ended:
            self._closed_by_peer("the proxy ended the stream")
            with contextlib.suppress(Exception):
                self.client._proto.h3.send_data(self.stream_id, b"", end_stream=True)
                self.client._proto.kick()

    def _closed_by_peer(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
        self._stop_fastpath()
        if self.quic_proxy is not None:
            self.quic_proxy.close()
        self.client._proto.tunnels.pop(self.stream_id, None)

    def _stop_fastpath(self) -> None:
        if self._fastpath is not None:
            self._fastpath.close()
            self.fastpath_flow = None  # keep the socket object: its counters stay readable

    def _fastpath_answer(self, answer: dict[bytes, bytes]) -> None:
        """Switch to the shim if the proxy granted the fast path; else record why not."""
        sock = self._fastpath
        status = answer.get(FASTPATH_STATUS_HEADER, b"").decode("ascii", "replace").strip()
        try:
            flow_id = int(answer[FASTPATH_FLOW_HEADER])
            host, _, port = answer[FASTPATH_ADDRESS_HEADER].decode("ascii").rpartition(":")
            switch = (host, int(port))
            granted = status == "granted" and sock is not None
        except (KeyError, ValueError, UnicodeDecodeError):
            granted = False
        if granted:
            assert sock is not None
            self.fastpath_flow = flow_id
            sock.start(flow_id, switch, self._deliver)
            self.fastpath = f"flow {flow_id} via {switch[0]}:{switch[1]}"
            log.info("tunnel %s:%d: fast path granted: %s from %s:%d", self.host, self.port,
                     self.fastpath, *sock.source)
            return
        reason = answer.get(FASTPATH_REASON_HEADER, b"").decode("ascii", "replace").strip()
        if len(reason) >= 2 and reason[0] == reason[-1] == '"':
            reason = reason[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        self.fastpath_reason = reason or (f"proxy answered masque-fastpath-status {status!r}"
                                          if status else "the proxy did not grant it")
        self.fastpath = "slow path"
        if sock is not None:
            sock.close()
            self._fastpath = None
        log.info("tunnel %s:%d: fast path requested, the proxy left it on the slow path: %s",
                 self.host, self.port, self.fastpath_reason)

    # -- an inner QUIC connection ----------------------------------------------------------
    async def quic(self, alpn: str = ECHO_ALPN, scheduler: StreamScheduler | str = "rr", *,
                   server_name: str | None = None, timeout: float = 10.0,
                   idle_timeout: float = 60.0,
                   configuration: QuicConfiguration | None = None) -> InnerConnection:
        """Run a QUIC client handshake through this tunnel; the connected inner connection.

        `configuration` (a client QuicConfiguration, e.g. the LLM back-end's settings)
        replaces the echo service's; `alpn` and `idle_timeout` then come from it.
        """
        if configuration is None:
            config = echo_configuration(is_client=True, idle_timeout=idle_timeout)
            config.alpn_protocols = [alpn]
        else:
            config = dataclasses.replace(configuration)  # a copy: the caller's stays as it was
        config.verify_mode = ssl.CERT_NONE  # targets use throw-away certificates
        config.server_name = server_name or self.host
        quic = ScheduledQuicConnection(configuration=config, scheduler=scheduler)
        cid, self._initial_cid = self._initial_cid, None
        if cid is not None and self.quic_proxy is not None:
            # the CID registered with the request; if it does not fit, the first sync
            # registers the connection's own and closes this registration
            adopt_initial_cid(quic, cid)
        inner = InnerConnection(self, quic)
        await inner.wait_connected(timeout)
        return inner


class InnerConnection:
    """A sans-I/O QUIC client connection carried by a `UdpTunnel`."""

    def __init__(self, tunnel: UdpTunnel, quic: ScheduledQuicConnection) -> None:
        self.tunnel = tunnel
        self.quic = quic
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._waiters: dict[int, asyncio.Future[bytes]] = {}
        self._buffers: dict[int, bytearray] = {}
        self._priorities: dict[int, int] = {}  # open streams' priority levels
        self.closed = asyncio.Event()
        tunnel.on_receive = self.datagram_received
        quic.connect(PLACEHOLDER_ADDR, now=self._loop.time())
        self._pump()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for the inner handshake; TimeoutError or MasqueError when it fails."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected
        except TimeoutError:
            self.close()
            raise

    # -- the pump --------------------------------------------------------------------------
    def datagram_received(self, data: bytes) -> None:
        """An inner QUIC packet arrived through the tunnel."""
        self.quic.receive_datagram(data, PLACEHOLDER_ADDR, now=self._loop.time())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.quic.handle_timer(now=self._loop.time())
        self._pump()

    def _pump(self) -> None:
        while (event := self.quic.next_event()) is not None:
            self._event(event)
        # each packet is tagged for the most urgent stream still open (an approximation:
        # a packet may carry frames of several streams and acknowledgements)
        urgent = min(self._priorities.values(), default=None)
        forwarding = self.tunnel.quic_proxy
        if forwarding is not None:
            # register new connection IDs before the packets announcing them leave
            forwarding.sync(self.quic)
        for data, _addr in self.quic.datagrams_to_send(now=self._loop.time()):
            self.tunnel.send_inner(data, urgent)
        at = self.quic.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer = None if at is None else self._loop.call_at(at, self._on_timer)

    def _event(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            if not self._connected.done():
                self._connected.set_result(None)
        elif isinstance(event, StreamDataReceived):
            buf = self._buffers.setdefault(event.stream_id, bytearray())
            buf += event.data
            if event.end_stream:
                self._priorities.pop(event.stream_id, None)
                waiter = self._waiters.pop(event.stream_id, None)
                data = bytes(self._buffers.pop(event.stream_id))
                if waiter is not None and not waiter.done():
                    waiter.set_result(data)
        elif isinstance(event, StreamReset):
            self._priorities.pop(event.stream_id, None)
            waiter = self._waiters.pop(event.stream_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(MasqueError(f"stream {event.stream_id} reset "
                                                 f"({event.error_code:#x})"))
        elif isinstance(event, ConnectionTerminated):
            self.closed.set()
            error = MasqueError(f"inner connection closed: {event.reason_phrase or ''}"
                                f" ({event.error_code:#x})")
            if not self._connected.done():
                self._connected.set_exception(error)
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(error)
            self._waiters.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None

    # -- application API -------------------------------------------------------------------
    def send(self, data: bytes, meta: StreamMeta | None = None) -> asyncio.Future[bytes]:
        """Send `data` on a new stream (with its FIN); a future of the whole answer."""
        stream_id = self.quic.open_stream(meta)
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        self._waiters[stream_id] = waiter
        self._priorities[stream_id] = (meta or StreamMeta()).priority
        self.quic.send_stream_data(stream_id, data, end_stream=True)
        self._pump()
        return waiter

    async def request(self, data: bytes, meta: StreamMeta | None = None,
                      timeout: float | None = None) -> bytes:
        """Send `data` on a new stream and wait for the peer's whole answer."""
        async with asyncio.timeout(timeout):
            return await self.send(data, meta)

    def close(self) -> None:
        """Close the inner connection (CONNECTION_CLOSE through the tunnel)."""
        if not self.closed.is_set():
            self.quic.close()
            self._pump()
            self.closed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None


class MasqueClient:
    """One outer HTTP/3 connection to a CONNECT-UDP proxy; `open_udp` makes tunnels."""

    def __init__(self, host: str, port: int, *, scheduler: StreamScheduler | str = "rr",
                 template_path: str = DEFAULT_TEMPLATE_PATH, authority: str | None = None,
                 datagrams: bool = True, server_name: str | None = None,
                 verify: bool = False, connect_timeout: float = 10.0,
                 congestion_control: str = congestion.DEFAULT) -> None:
        congestion.check(congestion_control)
        self.congestion_control = congestion_control
        self.host, self.port = host, port
        self.scheduler = scheduler
        self.template_path = template_path
        self.authority = authority or (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        self.datagrams = datagrams
        self.server_name = server_name
        self.verify = verify
        self.connect_timeout = connect_timeout
        self._stack: contextlib.AsyncExitStack | None = None
        self._proto_: _ClientProtocol | None = None

    @property
    def _proto(self) -> _ClientProtocol:
        if self._proto_ is None:
            raise MasqueError("the client is not connected")
        return self._proto_

    @property
    def connection(self) -> ScheduledQuicConnection:
        """The outer QUIC connection (its `scheduler` orders the tunnels' streams)."""
        return self._proto.connection

    @property
    def h3(self) -> MasqueH3Connection:
        """The outer HTTP/3 connection (for its SETTINGS)."""
        return self._proto.h3

    async def __aenter__(self) -> MasqueClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Handshake with the proxy and wait for its SETTINGS (RFC 9220 asks for that)."""
        config = outer_configuration(is_client=True, datagrams=self.datagrams,
                                     congestion_control=self.congestion_control)
        config.server_name = self.server_name or self.host
        if not self.verify:
            config.verify_mode = ssl.CERT_NONE
        scheduler = self.scheduler

        def create(connection: QuicConnection, **kwargs: Any) -> _ClientProtocol:
            sched = scheduler if isinstance(scheduler, str) else scheduler
            return _ClientProtocol(ScheduledQuicConnection.adopt(connection, sched), **kwargs)

        stack = contextlib.AsyncExitStack()
        try:
            async with asyncio.timeout(self.connect_timeout):
                proto = await stack.enter_async_context(
                    connect(self.host, self.port, configuration=config, create_protocol=create))
                self._proto_ = proto  # type: ignore[assignment]
                await self._proto.settings.wait()
        except BaseException:
            await stack.aclose()
            self._proto_ = None
            raise
        self._stack = stack
        if self._proto.terminated.is_set():
            await self.close()
            raise MasqueError("the proxy closed the connection")
        if not self.h3.peer_extended_connect:
            await self.close()
            raise MasqueError("the proxy did not send SETTINGS_ENABLE_CONNECT_PROTOCOL=1")

    async def close(self) -> None:
        """Close every tunnel and the outer connection."""
        if self._proto_ is not None:
            for tunnel in list(self._proto_.tunnels.values()):
                tunnel.close()
            if self._proto_._keepalive is not None:
                self._proto_._keepalive.cancel()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def open_udp(self, host: str, port: int, *, mode: str = "datagram",
                       meta: StreamMeta | None = None, fastpath: bool = False,
                       fastpath_source: tuple[str, int] | None = None,
                       fastpath_dscp: dict[int, int] | None = None,
                       quic_forwarding: bool = False,
                       timeout: float = 10.0) -> UdpTunnel:
        """Open a CONNECT-UDP tunnel to host:port; TunnelRefused on a non-2xx answer.

        `mode` is "datagram" or "stream" (see the module docs); `meta` ranks the
        tunnel's request stream in the outer scheduler and at the proxy; `fastpath`
        asks for the switch fast path, with shims sent from `fastpath_source`
        (default: this host's address towards the proxy, a free port);
        `fastpath_dscp` maps inner-stream priority levels to the DSCP tags the
        packets carry, which the proxy registers with the controller;
        `quic_forwarding` asks for forwarded mode (draft-ietf-masque-quic-proxy) for
        an inner QUIC connection: refused, the tunnel simply stays tunnelled.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        proto = self._proto
        if proto.terminated.is_set():
            raise MasqueError("the outer connection is closed")
        if mode == "datagram" and not proto.h3.peer_datagrams:
            log.info("the proxy did not negotiate HTTP Datagrams: %s:%d uses stream mode",
                     host, port)
            mode = "stream"
        meta = meta or StreamMeta()
        headers = [
            (b":method", b"CONNECT"), (b":protocol", UPGRADE_TOKEN.encode()),
            (b":scheme", b"https"), (b":authority", self.authority.encode()),
            (b":path", udp_path(host, port, self.template_path).encode()),
            (b"capsule-protocol", b"?1"), (MODE_HEADER, mode.encode()),
            (RANK_HEADER, str(max(0, meta.priority)).encode()),
            (b"priority", f"u={min(7, max(0, meta.priority))}".encode()),
        ]
        fp_socket: FastPathSocket | None = None
        if fastpath:
            headers.append((FASTPATH_HEADER, b"?1"))
            try:
                source = fastpath_source or (local_address_towards(self.host, self.port), 0)
                fp_socket = FastPathSocket(source)
            except OSError as exc:
                log.info("tunnel %s:%d: no fast-path socket (%s); asking without a source",
                         host, port, exc)
            else:
                headers.append((FASTPATH_SOURCE_HEADER,
                                f"{fp_socket.source[0]}:{fp_socket.source[1]}".encode()))
                if fastpath_dscp:
                    headers.append((FASTPATH_DSCP_HEADER, format_dscp_map(fastpath_dscp)))
        if quic_forwarding:
            headers += client_request_headers()
        stream_id = proto.connection.open_stream(meta)
        fut: asyncio.Future[tuple[dict[bytes, bytes], bool]] = (
            asyncio.get_running_loop().create_future())
        proto.responses[stream_id] = fut
        tunnel = UdpTunnel(self, stream_id, host, port, mode, meta)
        if quic_forwarding:
            tunnel._early_cid_capsules = []
        tunnel._fastpath = fp_socket
        tunnel.fastpath_dscp = dict(fastpath_dscp or {})
        proto.tunnels[stream_id] = tunnel
        proto.h3.send_headers(stream_id, headers)
        if quic_forwarding:
            # the initial client CID goes with the request (see client_forwarding)
            tunnel._initial_cid, capsule = early_client_cid()
            proto.h3.send_data(stream_id, capsule, end_stream=False)
        proto.kick()
        try:
            async with asyncio.timeout(timeout):
                answer, ended = await fut
        except BaseException:
            if fp_socket is not None:
                fp_socket.close()
            proto.responses.pop(stream_id, None)
            proto.tunnels.pop(stream_id, None)
            with contextlib.suppress(Exception):
                proto._quic.reset_stream(stream_id, 0x10C)  # H3_REQUEST_CANCELLED
                proto.kick()
            raise
        status = int(answer.get(b":status", b"0"))
        if not 200 <= status < 300 or ended:
            if fp_socket is not None:
                fp_socket.close()
            proto.tunnels.pop(stream_id, None)
            tunnel.closed.set()
            raise TunnelRefused(status, answer)
        confirmed = answer.get(MODE_HEADER, b"").decode("ascii", "replace")
        if confirmed in MODES:
            tunnel.mode = confirmed
        if fastpath:
            tunnel._fastpath_answer(answer)
        if quic_forwarding:
            try:
                tunnel._start_forwarding(answer)
            except TransformNotOffered as exc:  # the draft: the client aborts the request
                tunnel._reset(str(exc), 0x10C)  # H3_REQUEST_CANCELLED
                raise MasqueError(f"{exc}: request aborted") from None
        return tunnel
