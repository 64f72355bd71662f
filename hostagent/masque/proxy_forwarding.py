"""Forwarded mode on the proxy: the sockets glue around `quic_proxy.ProxyCidState`.

- `ForwardingQuicServer`: aioquic's QuicServer, except that a short-header packet
  arriving on the client-facing socket is first looked up in the proxy's software
  forwarder by (4-tuple, DCID); a match is rewritten and leaves on the tunnel's
  proxy-to-target socket, anything else goes to the proxy's own QUIC stack.
- `TunnelForwarding`: one request stream's registrations; turns the state
  machine's actions into capsules on the stream and `ForwardingRule`s installed in
  every forwarding table (software first, then e.g. a switch).
- `VcidAllocator`: unpredictable virtual connection IDs that conflict with no
  connection ID the proxy knows on the client-to-proxy side.

The target-facing direction is hooked in `proxy._UdpEndpoint`: a datagram from the
target is offered to the software forwarder before the tunnel relays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aioquic.asyncio.server import QuicServer

from hostagent.masque.forwarding import (
    TO_CLIENT,
    TO_TARGET,
    ForwardingRule,
    ForwardingTable,
    FourTuple,
    SoftwareForwarder,
)
from hostagent.masque.quic_proxy import (
    Action,
    Install,
    Negotiation,
    NoVcidAvailable,
    ProxyCidState,
    Remove,
    Send,
    ToClientRule,
    ToTargetRule,
)
from hostagent.masque.quic_proxy_wire import cids_conflict, decode_capsule, is_short_header

if TYPE_CHECKING:
    from hostagent.masque.proxy import ProxyTunnel

log = logging.getLogger("mp-proxy")
Address = tuple[str, int]


def normalise(addr: Any) -> Address:
    """(IP text, port) of a socket address (IPv4-mapped IPv6 as IPv4)."""
    host = str(addr[0])
    if ":" not in host:  # IPv4: the common case, once per forwarded packet
        return host, int(addr[1])
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            host = str(ip.ipv4_mapped)
    return host, int(addr[1])


def local_address_for(bound: Address, peer: Address) -> Address:
    """The proxy's address:port a peer sends to: the bound one, or (wildcard) the route's."""
    host, port = bound
    if host not in ("0.0.0.0", "::", ""):
        return bound
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(peer)  # no packet is sent: this only picks the route's source
        return normalise(probe.getsockname())[0], port


class ForwardingQuicServer(QuicServer):
    """QuicServer whose client-facing socket first offers short-header packets to the
    software forwarder (`forward(data, addr)` returns whether it took the packet)."""

    forward: Callable[[bytes, Any], bool] | None = None

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        if (self.forward is not None and isinstance(data, bytes) and is_short_header(data)
                and self.forward(data, addr)):
            return
        super().datagram_received(data, addr)


async def serve_forwarding(host: str, port: int, **kwargs: Any) -> ForwardingQuicServer:
    """aioquic's `serve`, with a `ForwardingQuicServer`."""
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: ForwardingQuicServer(**kwargs), local_addr=(host, port))
    return protocol


class VcidAllocator:
    """Random VCIDs that conflict (equal or prefix) with no connection ID in `known(client)`.

    `known(True)` yields the DCIDs of packets from the proxy to the client (the
    client's outer connection IDs, client VCIDs in use or offered), `known(False)`
    those of packets from the client to the proxy (the proxy's outer connection IDs,
    target VCIDs); a VCID is never a prefix of one of them, nor they of it, so the
    forwarder's lookup, the proxy's QUIC stack and the client's never overlap.
    """

    def __init__(self, known: Callable[[bool], Iterable[bytes]]) -> None:
        self._known = known

    def __call__(self, length: int, client: bool) -> bytes:
        known = list(self._known(client))
        if any(len(other) == 0 for other in known):
            raise NoVcidAvailable("a zero-length connection ID conflicts with every VCID")
        for _ in range(64):
            vcid = os.urandom(length)
            if not any(cids_conflict(vcid, other) for other in known):
                return vcid
        raise NoVcidAvailable("no conflict-free VCID in 64 tries")  # pragma: no cover


#: how long an acknowledgement waits for a forwarding table (a switch, through its
#: controller) to install the rule it announces; after that it goes anyway, since the
#: software forwarder covers whatever the switch does not have yet
TABLE_INSTALL_WAIT_S = 2.0
#: how long a closing proxy waits for its tables to finish their calls (the removals of
#: its mappings: a switch would otherwise keep them after the proxy is gone)
TABLE_CLOSE_WAIT_S = 10.0


def run_table_call(result: None | Awaitable[None], what: str) -> asyncio.Future[None] | None:
    """Let a forwarding table's awaitable answer finish in the background, logging a
    failure; the future of that (None when the table answered at once)."""
    if result is None or not asyncio.iscoroutine(result) and not asyncio.isfuture(result):
        return None

    async def wait() -> None:
        try:
            await result  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the software forwarder still works
            log.warning("forwarding table: %s failed: %s", what, exc)

    return asyncio.ensure_future(wait())


class TunnelForwarding:
    """One request stream's connection-ID registrations and the rules they produced."""

    def __init__(self, tunnel: ProxyTunnel, negotiation: Negotiation, *,
                 new_vcid: Callable[[int, bool], bytes], max_active: int,
                 tables: list[ForwardingTable], client: Address,
                 client_local: Address,
                 pending: set[asyncio.Future[None]] | None = None) -> None:
        self.tunnel = tunnel
        self.negotiation = negotiation
        self.state = ProxyCidState(forwarding=negotiation.forwarding, new_vcid=new_vcid,
                                   max_active=max_active)
        self.tables = tables
        #: the tables' calls still running (shared with the proxy, which waits for them
        #: when it closes)
        self.pending: set[asyncio.Future[None]] = set() if pending is None else pending
        self.client, self.client_local = client, client_local
        self.rules: dict[ToClientRule | ToTargetRule, ForwardingRule] = {}
        self.capsules_sent = self.capsules_received = 0
        #: capsules wait here for the tables' installs that come before them (in order)
        self._send_chain: asyncio.Future[None] | None = None
        self._announced: set[str] = set()  # directions whose first rule was logged

    @property
    def forwarding(self) -> bool:
        """Whether forwarded mode was negotiated for this stream."""
        return self.negotiation.forwarding

    def target_tuple(self) -> FourTuple:
        """The proxy-to-target 4-tuple (proxy side first)."""
        transport = self.tunnel.transport
        assert transport is not None
        return FourTuple(normalise(transport.get_extra_info("sockname")),
                         normalise(transport.get_extra_info("peername")))

    def start(self) -> None:
        """After the 2xx: the registration allowance."""
        self._apply(self.state.start())

    def capsule(self, capsule_type: int, value: bytes) -> None:
        """A capsule of the draft from the client; CapsuleError or ProtocolViolation."""
        self.capsules_received += 1
        capsule = decode_capsule(capsule_type, value)
        log.debug("tunnel %s: received %s", self.tunnel.label, capsule)
        self._apply(self.state.receive(capsule))

    def close_target_cid(self, cid: bytes) -> None:
        """Stop forwarding to this target CID (tells the client)."""
        self._apply(self.state.close_target_cid(cid))

    def close_client_cid(self, cid: bytes) -> None:
        """Stop forwarding to this client CID (tells the client)."""
        self._apply(self.state.close_client_cid(cid))

    def close(self) -> None:
        """The stream is gone: remove every rule it installed."""
        for key in list(self.rules):
            self._remove(key)

    def rebind(self, client: Address, client_local: Address) -> None:
        """The client's outer connection moved to a new validated path (passive
        migration): the same mappings, bound to the new client-to-proxy 4-tuple."""
        if (client, client_local) == (self.client, self.client_local):
            return
        log.info("tunnel %s: client path %s:%d -> %s:%d, forwarding rules follow",
                 self.tunnel.label, *self.client, *client)
        keys = list(self.rules)
        for key in keys:
            self._remove(key)
        self.client, self.client_local = client, client_local
        for key in keys:
            self._install(key)

    def _apply(self, actions: list[Action]) -> None:
        """Carry out the state machine's actions in order. A capsule that follows an
        install (an ACK announcing a mapping) leaves only once every table has the rule,
        or after TABLE_INSTALL_WAIT_S, so that a switch forwards the first packet too."""
        installing: list[asyncio.Future[None]] = []
        for action in actions:
            if isinstance(action, Send):
                self._send(action.capsule, installing)
            elif isinstance(action, Install):
                installing += self._install(action.rule)
            elif isinstance(action, Remove):
                self._remove(action.rule)

    def _send(self, capsule: Any, installing: list[asyncio.Future[None]]) -> None:
        def send_now() -> None:
            log.debug("tunnel %s: sending %s", self.tunnel.label, capsule)
            self.capsules_sent += 1
            self.tunnel.proto.send_capsule(self.tunnel, capsule.encode())

        previous = self._send_chain
        if not installing and (previous is None or previous.done()):
            send_now()
            return
        waits = list(installing)

        async def send_later() -> None:
            if previous is not None:
                await previous
            if waits:
                await asyncio.wait(waits, timeout=TABLE_INSTALL_WAIT_S)
            send_now()

        self._send_chain = asyncio.ensure_future(send_later())

    def _rule(self, key: ToClientRule | ToTargetRule) -> ForwardingRule:
        target = self.target_tuple()
        client_side = FourTuple(self.client, self.client_local)
        label, rank = self.tunnel.label, self.tunnel.rank
        if isinstance(key, ToTargetRule):
            return ForwardingRule(TO_TARGET, client_side, key.vcid, target, key.cid, rank, label)
        return ForwardingRule(TO_CLIENT, FourTuple(target.dst, target.src), key.cid,
                              FourTuple(self.client_local, self.client), key.vcid, rank, label)

    def _install(self, key: ToClientRule | ToTargetRule) -> list[asyncio.Future[None]]:
        """Install the rule in every table; the futures of the tables still installing."""
        rule = self._rule(key)
        self.rules[key] = rule
        first = rule.direction not in self._announced
        self._announced.add(rule.direction)
        log.log(logging.INFO if first else logging.DEBUG, "tunnel %s: forwarding %s",
                self.tunnel.label, rule)
        pending = [run_table_call(table.install(rule), f"install {rule}")
                   for table in self.tables]
        running = [f for f in pending if f is not None]
        self._track(running)
        return running

    def _track(self, futures: list[asyncio.Future[None]]) -> None:
        for future in futures:
            self.pending.add(future)
            future.add_done_callback(self.pending.discard)

    def _remove(self, key: ToClientRule | ToTargetRule) -> None:
        rule = self.rules.pop(key, None)
        if rule is None:
            return
        log.debug("tunnel %s: no longer forwarding %s", self.tunnel.label, rule)
        self._track([f for f in (run_table_call(table.remove(rule), f"remove {rule}")
                                 for table in self.tables) if f is not None])


def client_side_vcids(forwarder: SoftwareForwarder, client: bool) -> Iterable[bytes]:
    """The VCIDs in use on client-to-proxy 4-tuples: client VCIDs the rules write
    (`client`), or target VCIDs they match (client and target CIDs live on other
    4-tuples: not listed)."""
    for rule in forwarder.rules():
        if rule.direction == TO_CLIENT and client:
            yield rule.new_dcid
        elif rule.direction == TO_TARGET and not client:
            yield rule.dcid
