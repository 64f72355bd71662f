"""The fast-path hand-off: the proxy asks the controller for a switch flow, the client
sends the tunnel's inner packets in the shim straight to the switch.

Proxy side (`ControllerFastPath`, a `FastPathHook`): for a request with
``masque-fastpath: ?1`` and ``masque-fastpath-source: A:P`` (the IPv4 address and
UDP port the client will send shims from), the proxy checks that A is the
address of the client's outer connection (a client cannot have another host's
packets redirected), calls the controller's northbound ``OpenFlow`` with its own
token, registers the tunnel's rank (``RegisterStream``), and answers with the
flow id and the switch's fast-path address. The proxy, not the client, is the
controller's client: its token must belong to an operator entry of the
controller's config, because the flows it opens carry the clients' addresses,
not its own. A refusal or an unreachable controller leaves the tunnel on the
slow path, with the reason in ``masque-fastpath-reason`` and in the log. When
the tunnel closes the proxy removes the ranks and calls ``CloseFlow``. While it runs
the proxy holds a controller ``Session`` (`open_session`) and names it in every call,
so that the controller removes the flows, ranks and forwarded-mode mappings the proxy
made if the proxy dies before removing them itself.

Client side (`FastPathSocket`): one UDP socket per granted tunnel, bound to the
declared source; `send` wraps each inner packet in the shim (with an optional
per-packet DSCP), received shims are unwrapped and handed to the tunnel,
malformed ones and other flows' are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hostagent import shim
from hostagent.masque.proxy import (
    FASTPATH_ADDRESS_HEADER,
    FASTPATH_DSCP_HEADER,
    FASTPATH_FLOW_HEADER,
    FASTPATH_PROXY_PORT_HEADER,
    FASTPATH_SOURCE_HEADER,
    FASTPATH_STATUS_HEADER,
    Headers,
    slow_path_headers,
)

if TYPE_CHECKING:
    from hostagent.masque.proxy import ProxyTunnel

log = logging.getLogger("mp-proxy")

#: Seconds per northbound call before the tunnel falls back to the slow path.
CONTROLLER_TIMEOUT = 5.0
#: first and longest wait before reopening a lost controller session, seconds
SESSION_RETRY_S, SESSION_RETRY_MAX_S = 0.5, 10.0


class FastPathDenied(Exception):
    """A fast-path request the proxy leaves on the slow path; the message says why."""


def parse_source(value: bytes | None) -> tuple[str, int]:
    """``A.B.C.D:PORT`` of ``masque-fastpath-source`` -> (address, port); FastPathDenied."""
    if value is None:
        raise FastPathDenied("no masque-fastpath-source header (the shims' IPv4 address:port)")
    text = value.decode("ascii", "replace").strip()
    host, sep, port_text = text.rpartition(":")
    try:
        address = str(ipaddress.IPv4Address(host))
        port = int(port_text)
    except ValueError:
        raise FastPathDenied(f"masque-fastpath-source {text!r} is not IPv4ADDRESS:PORT"
                             ) from None
    if not sep or not 0 < port < 65536:
        raise FastPathDenied(f"masque-fastpath-source {text!r}: port out of range 1-65535")
    return address, port


def parse_dscp_map(value: bytes | None) -> dict[int, int]:
    """``masque-fastpath-dscp: 46=0, 10=3`` -> {dscp: priority}; FastPathDenied when bad."""
    if not value:
        return {}
    out: dict[int, int] = {}
    for item in value.decode("ascii", "replace").split(","):
        dscp_text, sep, prio_text = item.strip().partition("=")
        try:
            dscp, priority = int(dscp_text), int(prio_text)
        except ValueError:
            raise FastPathDenied(f"masque-fastpath-dscp item {item.strip()!r} is not "
                                 "DSCP=PRIORITY") from None
        if not sep or not 0 <= dscp <= 63 or priority < 0:
            raise FastPathDenied(f"masque-fastpath-dscp item {item.strip()!r}: DSCP 0..63, "
                                 "priority >= 0")
        out[dscp] = priority
    return out


def format_dscp_map(dscp_by_priority: dict[int, int]) -> bytes:
    """{priority: dscp} as the client declares it -> the ``masque-fastpath-dscp`` value."""
    return ", ".join(f"{d}={p}" for p, d in sorted(dscp_by_priority.items())).encode()


def _normalise(host: str | None) -> str | None:
    if host is None:
        return None
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(address)
    return host


@dataclass
class GrantedFlow:
    """What the proxy holds for one tunnel on the fast path."""

    flow_id: int
    client_addr: str
    client_port: int
    fastpath_addr: str
    fastpath_port: int
    proxy_port: int
    #: flow_rank keys registered for it: (src, dst, sport, dport, dscp)
    streams: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    #: priority level per DSCP tag (-1: the whole flow, from the tunnel's rank)
    priorities: dict[int, int] = field(default_factory=dict)


class ControllerFastPath:
    """The `FastPathHook` that opens and closes flows through the controller's northbound API.

    `address` is the controller's HOST:PORT; `token` an operator token of its
    config (see the module docs); `tls` a clikit.tls.TlsFiles (None: plaintext).
    The gRPC channel is made on first use, inside the proxy's event loop.
    """

    def __init__(self, address: str, token: str, timeout: float = CONTROLLER_TIMEOUT,
                 tls: Any = None) -> None:
        self.address = address
        self.token = token
        self.tls = tls
        self.timeout = timeout
        self.granted: dict[int, GrantedFlow] = {}  # by flow id
        self.stats = {"granted": 0, "refused": 0, "unreachable": 0, "closed": 0,
                      "close_failed": 0, "streams_registered": 0, "streams_refused": 0}
        self._channel: Any = None
        self._stub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: the controller session this proxy's calls belong to (None: none open now)
        self.session_id: str | None = None
        #: coroutines to run when a new session replaces one the controller ended (and
        #: with it removed what it held): the forwarding table installs its rules again
        self.on_new_session: list[Callable[[], Awaitable[None]]] = []
        self._session_up = asyncio.Event()
        self._session_task: asyncio.Task[None] | None = None

    def _client(self) -> Any:
        if self._stub is None:
            from clikit import tls as tls_mod  # noqa: PLC0415 - only with a controller
            from controller.proto import northbound_pb2_grpc as nb_grpc  # noqa: PLC0415
            self._channel = tls_mod.aio_channel(self.address, self.tls or tls_mod.TlsFiles())
            self._stub = nb_grpc.ControllerStub(self._channel)
        return self._stub

    def _kw(self) -> dict[str, Any]:
        metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self.token}"),)
        if self.session_id is not None:
            from controller.sessions import SESSION_METADATA  # noqa: PLC0415
            metadata += ((SESSION_METADATA, self.session_id),)
        return {"metadata": metadata, "timeout": self.timeout}

    # -- the controller session -----------------------------------------------------------
    async def open_session(self, wait: float | None = None) -> bool:
        """Hold a controller session from now on (reopened when it breaks), so that what
        this proxy installs is removed by the controller if the proxy dies without doing
        so; wait up to `wait` s (default: the call timeout) for it. Whether one is open."""
        if self._session_task is None:
            self._session_task = asyncio.create_task(self._hold_session())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._session_up.wait(),
                                   self.timeout if wait is None else wait)
        if self.session_id is None and not self._session_task.done():
            log.warning("no session with the controller %s yet (still trying): what this "
                        "proxy installs until then stays if the proxy dies", self.address)
        return self.session_id is not None

    async def _hold_session(self) -> None:
        """Keep a session open: reconnect with backoff, asking to resume the last one (the
        controller keeps it for its grace period, so a short outage loses nothing)."""
        import grpc  # noqa: PLC0415

        from controller.proto import northbound_pb2 as nb  # noqa: PLC0415
        from controller.sessions import SESSION_METADATA  # noqa: PLC0415
        backoff = SESSION_RETRY_S
        while True:
            why = "the controller closed it"
            previous = self.session_id
            metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self.token}"),)
            if previous is not None:
                metadata += ((SESSION_METADATA, previous),)
            attached = False
            try:
                async for info in self._client().Session(nb.Empty(), metadata=metadata):
                    attached = True
                    if previous is None:
                        log.info("controller session %s open (%s)", info.session_id,
                                 self.address)
                    elif info.session_id == previous:
                        log.info("controller session %s resumed", previous)
                    else:
                        log.warning("controller session %s was not resumed (the controller "
                                    "restarted, or the grace period passed and it removed "
                                    "what the session installed); new session %s",
                                    previous, info.session_id)
                    replaced = previous is not None and info.session_id != previous
                    self.session_id = info.session_id
                    for listener in self.on_new_session if replaced else ():
                        self._run_listener(listener)
                    self._session_up.set()
                    backoff = SESSION_RETRY_S
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                    log.warning("the controller %s has no sessions (an older one): what "
                                "this proxy installs stays if the proxy dies", self.address)
                    self._session_up.set()  # nothing to wait for
                    return
                why = f"{exc.code().name.lower()}: {exc.details()}"
            if attached:
                log.warning("controller session %s interrupted (%s): reconnecting to resume "
                            "it", self.session_id, why)
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, SESSION_RETRY_MAX_S)

    def _run_listener(self, listener: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.ensure_future(listener())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stub(self) -> Any:
        """The northbound stub (one channel for every call the proxy makes)."""
        return self._client()

    def call_options(self) -> dict[str, Any]:
        """Token and timeout of a northbound call."""
        return self._kw()

    # -- FastPathHook ----------------------------------------------------------------------
    async def request(self, tunnel: ProxyTunnel) -> Headers:
        """Open the tunnel's flow; granted headers, or slow-path headers with the reason."""
        import grpc  # noqa: PLC0415

        from controller.proto import northbound_pb2 as nb  # noqa: PLC0415
        try:
            flow = await self._open(tunnel, nb)
        except FastPathDenied as exc:
            self.stats["refused"] += 1
            return self._slow(tunnel, str(exc))
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self.stats["unreachable"] += 1
                return self._slow(tunnel, f"controller {self.address} unreachable "
                                  f"({code.name.lower()})")
            self.stats["refused"] += 1
            return self._slow(tunnel, f"controller refused: {code.name.lower()}: "
                              f"{exc.details()}")
        self.stats["granted"] += 1
        tunnel.fastpath_flow = flow.flow_id
        await self._register_streams(tunnel, flow, nb)
        log.info("tunnel %s: fast path granted: flow %d, shims from %s:%d to %s:%d, target "
                 "sees proxy port %d%s", tunnel.label, flow.flow_id, flow.client_addr,
                 flow.client_port, flow.fastpath_addr, flow.fastpath_port, flow.proxy_port,
                 f", {len(flow.streams)} stream ranks" if flow.streams else "")
        if tunnel.transport is not None:
            own = tunnel.transport.get_extra_info("sockname")
            if own and own[1] == flow.proxy_port:
                log.warning("tunnel %s: the proxy's own slow-path socket has port %d, the "
                            "flow's proxy port: keep the controller's proxy_ports out of "
                            "net.ipv4.ip_local_port_range", tunnel.label, flow.proxy_port)
        return [(FASTPATH_STATUS_HEADER, b"granted"),
                (FASTPATH_FLOW_HEADER, str(flow.flow_id).encode()),
                (FASTPATH_ADDRESS_HEADER, f"{flow.fastpath_addr}:{flow.fastpath_port}".encode()),
                (FASTPATH_PROXY_PORT_HEADER, str(flow.proxy_port).encode())]

    def release(self, tunnel: ProxyTunnel) -> None:
        """Remove the tunnel's ranks and close its flow, in the background."""
        flow_id, tunnel.fastpath_flow = tunnel.fastpath_flow, None
        flow = self.granted.pop(flow_id, None) if flow_id is not None else None
        if flow is None:
            return
        task = asyncio.ensure_future(self._close(tunnel.label, flow))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Wait for pending CloseFlow calls, then close the channel."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session_task is not None:  # ends the session: the controller cleans up
            self._session_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._session_task
            self._session_task, self.session_id = None, None
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    # -- the calls -------------------------------------------------------------------------
    def _slow(self, tunnel: ProxyTunnel, reason: str) -> Headers:
        log.info("tunnel %s: fast path refused, tunnel stays on the slow path: %s",
                 tunnel.label, reason)
        return slow_path_headers(reason)

    async def _open(self, tunnel: ProxyTunnel, nb: Any) -> GrantedFlow:
        headers = tunnel.request_headers
        addr, port = parse_source(headers.get(FASTPATH_SOURCE_HEADER))
        dscp_map = parse_dscp_map(headers.get(FASTPATH_DSCP_HEADER))
        peer = _normalise(tunnel.proto.peer_host)
        if addr != peer:
            raise FastPathDenied(f"masque-fastpath-source address {addr} is not the address "
                                 f"of the client's connection ({peer})")
        if tunnel.address.version != 4:
            raise FastPathDenied(f"the switch fast path is IPv4 only; target {tunnel.address}")
        reply = await self._client().OpenFlow(nb.OpenFlowRequest(
            client_addr=addr, client_port=port, target_addr=str(tunnel.address),
            target_port=tunnel.target.port), **self._kw())
        flow = GrantedFlow(reply.flow_id, reply.client_addr, reply.client_port,
                           reply.fastpath_addr, reply.fastpath_port, reply.proxy_port)
        if flow.flow_id in self.granted:
            # the controller is idempotent: the same 4-tuple gives the same flow, which a
            # second tunnel must not share (closing one would cut the other)
            raise FastPathDenied(f"flow {flow.flow_id} ({addr}:{port} -> {tunnel.address}:"
                                 f"{tunnel.target.port}) is already used by another tunnel")
        self.granted[flow.flow_id] = flow
        flow.priorities = {-1: tunnel.rank, **dscp_map}
        flow.streams = [(addr, flow.fastpath_addr, port, flow.fastpath_port, d)
                        for d in sorted(flow.priorities)]
        return flow

    async def _register_streams(self, tunnel: ProxyTunnel, flow: GrantedFlow, nb: Any) -> None:
        """The tunnel's rank on its 5-tuple, and one rank per declared DSCP tag."""
        import grpc  # noqa: PLC0415
        registered = []
        for key in flow.streams:
            src, dst, sport, dport, dscp = key
            try:
                await self._client().RegisterStream(nb.Stream(
                    key=nb.StreamKey(src_addr=src, dst_addr=dst, src_port=sport,
                                     dst_port=dport, dscp=dscp),
                    priority=flow.priorities[dscp]), **self._kw())
            except grpc.aio.AioRpcError as exc:
                self.stats["streams_refused"] += 1
                log.warning("tunnel %s: rank of %s:%d -> %s:%d dscp %d not registered: %s: %s",
                            tunnel.label, src, sport, dst, dport, dscp,
                            exc.code().name.lower(), exc.details())
                continue
            self.stats["streams_registered"] += 1
            registered.append(key)
        flow.streams = registered

    async def _close(self, label: str, flow: GrantedFlow) -> None:
        import grpc  # noqa: PLC0415

        from controller.proto import northbound_pb2 as nb  # noqa: PLC0415
        try:
            for src, dst, sport, dport, dscp in flow.streams:
                await self._client().RemoveStream(nb.StreamKey(
                    src_addr=src, dst_addr=dst, src_port=sport, dst_port=dport, dscp=dscp),
                    **self._kw())
            await self._client().CloseFlow(nb.FlowRef(flow_id=flow.flow_id), **self._kw())
        except grpc.aio.AioRpcError as exc:
            self.stats["close_failed"] += 1
            log.warning("tunnel %s: CloseFlow %d failed: %s: %s (the flow stays in the "
                        "switch until an operator closes it)", label, flow.flow_id,
                        exc.code().name.lower(), exc.details())
            return
        self.stats["closed"] += 1
        log.info("tunnel %s: fast-path flow %d closed", label, flow.flow_id)


# -- the client's side -----------------------------------------------------------------------

def local_address_towards(host: str, port: int) -> str:
    """The IPv4 source address this host uses to reach host:port (what the proxy sees)."""
    infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(infos[0][4])  # no packet is sent: this only picks a route
        return str(probe.getsockname()[0])


@dataclass
class FastPathCounters:
    """A client tunnel's fast-path traffic."""

    sent: int = 0
    sent_bytes: int = 0
    received: int = 0
    received_bytes: int = 0
    malformed: int = 0  # datagrams that are no valid shim
    other_flow: int = 0  # valid shims carrying another flow id
    send_errors: int = 0  # the socket refused a packet (buffer full, ICMP error)


class FastPathSocket:
    """The client's UDP socket to the switch for one tunnel: shim out, unwrap in."""

    def __init__(self, source: tuple[str, int] = ("0.0.0.0", 0)) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(source)
        self.source: tuple[str, int] = self.sock.getsockname()
        self.flow_id: int | None = None
        self.switch: tuple[str, int] | None = None
        self.counters = FastPathCounters()
        self.on_payload: Callable[[bytes], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tos = 0

    def start(self, flow_id: int, switch: tuple[str, int],
              on_payload: Callable[[bytes], None]) -> None:
        """Begin: shims carry `flow_id` to `switch`; unwrapped payloads go to `on_payload`."""
        self.flow_id, self.switch, self.on_payload = flow_id, switch, on_payload
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def send(self, payload: bytes, dscp: int | None = None) -> None:
        """One inner packet in the shim to the switch; DSCP (0..63) in the IP header."""
        assert self.flow_id is not None and self.switch is not None
        datagram = shim.wrap(self.flow_id, payload)
        tos = (dscp or 0) << 2
        try:
            if tos != self._tos:
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
                self._tos = tos
            self.sock.sendto(datagram, self.switch)
        except OSError:
            self.counters.send_errors += 1
            return
        self.counters.sent += 1
        self.counters.sent_bytes += len(payload)

    def _readable(self) -> None:
        for _ in range(64):
            try:
                datagram = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError:  # e.g. an ICMP error queued on the socket
                self.counters.send_errors += 1
                continue
            try:
                header, payload = shim.unwrap(datagram)
            except shim.MalformedShim:
                self.counters.malformed += 1
                continue
            if header.flow_id != self.flow_id:
                self.counters.other_flow += 1
                continue
            self.counters.received += 1
            self.counters.received_bytes += len(payload)
            if self.on_payload is not None:
                self.on_payload(payload)

    def close(self) -> None:
        """Stop reading and close the socket (idempotent)."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()
