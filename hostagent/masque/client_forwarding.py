"""Forwarded mode on the client: the glue between an inner aioquic connection, its tunnel,
and `quic_proxy.ClientCidState` (draft-ietf-masque-quic-proxy-06).

- `sync` compares the inner connection's connection IDs with the registrations
  after every step of the inner connection, before its packets leave: a
  connection ID it issued (NEW_CONNECTION_ID) is registered before the packet
  that announces it is sent; one the target retired is closed; the target's new
  ones (and its stateless reset tokens) are registered as they arrive.
- `outgoing` swaps the target CID of a short-header packet for its target VCID
  after packet protection (the packet comes out of aioquic finished); the caller
  sends it on the outer connection's own 4-tuple. Long-header packets and packets
  without a VCID return None: they go through the tunnel as before.
- `ClientVcidIndex` (one per outer connection) recognises forwarded packets
  arriving on the outer socket by their client VCID and swaps the real client CID
  back before the inner connection removes packet protection.
- `early_client_cid` / `adopt_initial_cid`: the inner connection's initial client CID
  is chosen when the request is sent and registered with it (the draft allows the
  initial REGISTER_CLIENT_CID before the response), so that ACK_CLIENT_VCID leaves
  with the inner Initial, a round trip before the target's first short-header packet:
  a switch behind a controller then has the target-to-client mapping before the
  target's packets arrive, instead of the proxy host forwarding the first of them.

A refusal of any kind (no forwarded mode in the response, a registration
rejected, a mapping closed by the proxy) only means that the packets concerned
stay in the tunnel; the inner connection never learns about it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hostagent.masque.quic_proxy import (
    ClientCidState,
    ClientEvent,
    ClientOutcome,
    ClientVcidGone,
    ClientVcidReady,
    Rejected,
    TargetVcidGone,
    TargetVcidReady,
)
from hostagent.masque.quic_proxy_wire import (
    CidCapsule,
    RegisterClientCid,
    decode_capsule,
    is_short_header,
    replace_dcid,
)

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

    from hostagent.masque.client import UdpTunnel

log = logging.getLogger("mp-client")

#: the length of the initial client CID registered with the request (aioquic's default
#: connection_id_length; an inner connection configured otherwise registers its own)
INITIAL_CID_LENGTH = 8


def early_client_cid() -> tuple[bytes, bytes]:
    """(a fresh initial client CID, its REGISTER_CLIENT_CID capsule) to send right after
    the request headers (draft-ietf-masque-quic-proxy-06 section 5.9: "initial
    REGISTER_CLIENT_CID capsules MAY be sent prior to receiving an HTTP response")."""
    cid = os.urandom(INITIAL_CID_LENGTH)
    return cid, RegisterClientCid(cid).encode()


def adopt_initial_cid(quic: QuicConnection, cid: bytes) -> bool:
    """Make `cid` the not yet connected client `quic`'s initial source connection ID (the
    one registered early); False (nothing changed) when its length is not the
    connection's. Sets aioquic's three copies of it."""
    if len(cid) != quic.configuration.connection_id_length or len(quic._host_cids) != 1:
        return False
    quic._host_cids[0].cid = cid
    quic.host_cid = cid
    quic._local_initial_source_connection_id = cid
    return True


@dataclass
class ForwardingCounters:
    """A tunnel's packets in forwarded mode, as the client sees them."""

    sent: int = 0  # short-header packets sent with a target VCID, outside the tunnel
    sent_bytes: int = 0
    received: int = 0  # packets that arrived with a client VCID, outside the tunnel
    received_bytes: int = 0
    tunnelled_short: int = 0  # short-header packets that had no VCID (yet): tunnelled
    capsules_sent: int = 0
    capsules_received: int = 0
    rejected: list[str] = field(default_factory=list)


class ClientVcidIndex:
    """Client VCIDs of every tunnel of one outer connection -> (tunnel, client CID)."""

    def __init__(self) -> None:
        self._by_vcid: dict[bytes, tuple[UdpTunnel, bytes]] = {}
        self._lengths: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._by_vcid)

    def add(self, vcid: bytes, tunnel: UdpTunnel, cid: bytes) -> None:
        """Accept forwarded packets with this VCID for `tunnel`'s client CID `cid`."""
        if vcid not in self._by_vcid:
            self._lengths[len(vcid)] = self._lengths.get(len(vcid), 0) + 1
        self._by_vcid[vcid] = (tunnel, cid)

    def discard(self, vcid: bytes) -> None:
        """Stop accepting this VCID."""
        if self._by_vcid.pop(vcid, None) is not None:
            self._lengths[len(vcid)] -= 1
            if not self._lengths[len(vcid)]:
                del self._lengths[len(vcid)]

    def match(self, packet: bytes) -> tuple[UdpTunnel, bytes] | None:
        """(tunnel, the packet with its real client CID) for a forwarded packet, else None."""
        if not self._by_vcid or not is_short_header(packet):
            return None
        for length in self._lengths:
            hit = self._by_vcid.get(packet[1:1 + length])
            if hit is not None:
                tunnel, cid = hit
                return tunnel, replace_dcid(packet, length, cid)
        return None


class TunnelForwardingClient:
    """One tunnel's forwarded mode: registrations, the VCIDs in use, the CID swaps.

    `send_capsule(bytes)` writes a capsule on the request stream; `index` is the
    outer connection's `ClientVcidIndex`; `outer_cids()` lists the client's own
    connection IDs of the outer connection (a client VCID must not collide).
    """

    def __init__(self, tunnel: UdpTunnel, outcome: ClientOutcome, *,
                 send_capsule: Callable[[bytes], None], index: ClientVcidIndex,
                 outer_cids: Callable[[], list[bytes]]) -> None:
        self.tunnel = tunnel
        self.outcome = outcome
        self.state = ClientCidState(forwarding=outcome.forwarding, outer_cids=outer_cids)
        self._send_capsule = send_capsule
        self.index = index
        self.target_vcids: dict[bytes, bytes] = {}  # target CID -> target VCID
        self._target_lengths: dict[int, int] = {}
        self.counters = ForwardingCounters()

    def registered_early(self, cid: bytes) -> None:
        """`cid` was registered with the request, before this state existed: count it as
        the first registration (sequence 0, within the initial allowance) without sending
        it again."""
        sent = self.state.add_client_cid(cid)
        if sent != [RegisterClientCid(cid)]:  # pragma: no cover - a fresh state allows 0
            raise RuntimeError(f"the early registration of {cid.hex()} is not sequence 0")
        self.counters.capsules_sent += 1

    # -- capsules --------------------------------------------------------------------------
    def _send(self, capsules: list[CidCapsule]) -> None:
        for capsule in capsules:
            log.debug("tunnel %s: sending %s", self.tunnel, capsule)
            self.counters.capsules_sent += 1
            self._send_capsule(capsule.encode())

    def capsule(self, capsule_type: int, value: bytes) -> None:
        """A capsule of the draft from the proxy; CapsuleError or ProtocolViolation."""
        self.counters.capsules_received += 1
        capsule = decode_capsule(capsule_type, value)
        log.debug("tunnel %s: received %s", self.tunnel, capsule)
        sent, events = self.state.receive(capsule)
        self._events(events)  # ready to receive before ACK_CLIENT_VCID leaves
        self._send(sent)

    def _events(self, events: list[ClientEvent]) -> None:
        for event in events:
            if isinstance(event, ClientVcidReady):
                self.index.add(event.vcid, self.tunnel, event.cid)
            elif isinstance(event, ClientVcidGone):
                self.index.discard(event.vcid)
            elif isinstance(event, TargetVcidReady):
                self._set_target(event.cid, event.vcid)
                log.info("tunnel %s: forwarding to target CID %s as VCID %s", self.tunnel,
                         event.cid.hex(), event.vcid.hex())
            elif isinstance(event, TargetVcidGone):
                self._set_target(event.cid, None)
                log.info("tunnel %s: target CID %s back in the tunnel", self.tunnel,
                         event.cid.hex())
            elif isinstance(event, Rejected):
                self.counters.rejected.append(f"{event.kind} {event.cid.hex()}: {event.reason}")
                log.info("tunnel %s: %s CID %s stays in the tunnel: %s", self.tunnel,
                         event.kind, event.cid.hex(), event.reason)

    def _set_target(self, cid: bytes, vcid: bytes | None) -> None:
        if cid in self.target_vcids:
            del self.target_vcids[cid]
            self._target_lengths[len(cid)] -= 1
            if not self._target_lengths[len(cid)]:
                del self._target_lengths[len(cid)]
        if vcid is not None:
            self.target_vcids[cid] = vcid
            self._target_lengths[len(cid)] = self._target_lengths.get(len(cid), 0) + 1

    # -- the inner connection --------------------------------------------------------------
    def sync(self, quic: QuicConnection) -> None:
        """Register new connection IDs of the inner connection, close retired ones."""
        if not self.outcome.forwarding:
            return
        host = [c.cid for c in sorted(quic._host_cids, key=lambda c: c.sequence_number or 0)]
        peer: list[Any] = []
        if quic._peer_cid.sequence_number is not None:  # the target chose its CID
            peer = [quic._peer_cid, *quic._peer_cid_available]
        current = {c.cid for c in peer}
        for cid in [c for c in self.state.target if c not in current]:
            sent, events = self.state.retire_target_cid(cid)
            self._events(events)
            self._send(sent)
        for cid in [c for c in self.state.client if c not in host]:
            sent, events = self.state.retire_client_cid(cid)
            self._events(events)
            self._send(sent)
        # the target CID in use first, so the allowance goes where it helps most
        for connection_id in peer:
            self._send(self.state.add_target_cid(connection_id.cid,
                                                 connection_id.stateless_reset_token or b""))
        for cid in host:
            self._send(self.state.add_client_cid(cid))

    def ready(self, quic: QuicConnection) -> bool:
        """Whether both directions of `quic` are mapped: the target CID it sends to has a
        target VCID, and the client CID it receives on has a client VCID (acknowledged
        with ACK_CLIENT_VCID; when the proxy's forwarding starts is up to the proxy)."""
        if not self.outcome.forwarding or quic._peer_cid.sequence_number is None:
            return False
        reg = self.state.client.get(quic.host_cid)
        return quic._peer_cid.cid in self.target_vcids and reg is not None and (
            reg.vcid is not None)

    def outgoing(self, packet: bytes) -> bytes | None:
        """The packet with its target VCID when it may be forwarded, else None."""
        if not self.target_vcids or not is_short_header(packet):
            if is_short_header(packet):
                self.counters.tunnelled_short += 1
            return None
        for length in self._target_lengths:
            vcid = self.target_vcids.get(packet[1:1 + length])
            if vcid is not None:
                out = replace_dcid(packet, length, vcid)
                self.counters.sent += 1
                self.counters.sent_bytes += len(out)
                return out
        self.counters.tunnelled_short += 1
        return None

    def received(self, packet: bytes) -> None:
        """Count a forwarded packet that arrived for this tunnel."""
        self.counters.received += 1
        self.counters.received_bytes += len(packet)

    def close(self) -> None:
        """The tunnel closed: its VCIDs are void."""
        self._events(self.state.close_all())
        self.target_vcids.clear()
        self._target_lengths.clear()
