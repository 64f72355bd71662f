"""The HTTP/3 layer both MASQUE ends share: settings, configurations, datagram sizing.

aioquic's `H3Connection` always sends SETTINGS_ENABLE_CONNECT_PROTOCOL but sends
SETTINGS_H3_DATAGRAM only together with WebTransport; `MasqueH3Connection`
overrides `_get_local_settings` so that H3_DATAGRAM is sent (when QUIC DATAGRAM
frames are enabled) without advertising WebTransport. aioquic does not check what
the peer negotiated before it sends datagrams, so `peer_datagrams` and
`peer_extended_connect` read the peer's SETTINGS for the callers.
"""

from __future__ import annotations

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from hostagent import congestion
from hostagent.masque.wire import SETTINGS_ENABLE_CONNECT_PROTOCOL, SETTINGS_H3_DATAGRAM

#: Outer packets must hold a whole inner QUIC packet (1200 bytes) plus the outer
#: headers; an outer max_datagram_size of 1200 never let an inner handshake finish.
OUTER_MAX_DATAGRAM_SIZE = 1350
#: The largest QUIC DATAGRAM frame this end accepts (transport parameter).
MAX_DATAGRAM_FRAME_SIZE = 65536
#: Outer flow-control windows, so that tunnels are never window-bound.
OUTER_MAX_DATA = 64 * 1024 * 1024
OUTER_MAX_STREAM_DATA = 8 * 1024 * 1024
#: Worst-case bytes aioquic's 1-RTT packet adds around a DATAGRAM frame's payload
#: when the frame starts a packet: first byte, the longest connection ID (20 bytes),
#: aioquic's 2-byte packet number, frame type, 4-byte length, 16-byte AEAD tag. A frame
#: that does not fit after an ACK waits for the next packet, so it only has to fit an
#: empty one. (It was 70 with room for an ACK: 1280-byte UDP payloads, a usual QUIC
#: packet size, then left as capsules, which masque-go drops; see docs/interop.md.)
DATAGRAM_OVERHEAD = 1 + 20 + 2 + 1 + 4 + 16


def outer_configuration(is_client: bool, *, datagrams: bool = True,
                        idle_timeout: float = 60.0,
                        congestion_control: str = congestion.DEFAULT) -> QuicConfiguration:
    """QUIC settings of the outer (client-proxy) connection: HTTP/3, DATAGRAM frames, the
    congestion controller named `congestion_control` (see `hostagent.congestion`)."""
    congestion.check(congestion_control)
    return QuicConfiguration(
        is_client=is_client, alpn_protocols=list(H3_ALPN),
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE if datagrams else None,
        max_datagram_size=OUTER_MAX_DATAGRAM_SIZE, max_data=OUTER_MAX_DATA,
        max_stream_data=OUTER_MAX_STREAM_DATA, idle_timeout=idle_timeout,
        congestion_control_algorithm=congestion_control)


class MasqueH3Connection(H3Connection):
    """`H3Connection` that advertises SETTINGS_H3_DATAGRAM without WebTransport."""

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings[SETTINGS_ENABLE_CONNECT_PROTOCOL] = 1
        if self._quic.configuration.max_datagram_frame_size is not None:
            settings[SETTINGS_H3_DATAGRAM] = 1
        return settings

    @property
    def settings_received(self) -> bool:
        """Whether the peer's SETTINGS frame has arrived."""
        return self.received_settings is not None

    @property
    def peer_datagrams(self) -> bool:
        """Both ends negotiated HTTP/3 datagrams (H3_DATAGRAM=1 and DATAGRAM frames)."""
        peer = self.received_settings or {}
        return (peer.get(SETTINGS_H3_DATAGRAM) == 1
                and self._quic.configuration.max_datagram_frame_size is not None
                and self._quic._remote_max_datagram_frame_size is not None)

    @property
    def peer_extended_connect(self) -> bool:
        """The peer sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 9220)."""
        return (self.received_settings or {}).get(SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1


#: HTTP Datagrams one connection may have queued in aioquic before more are dropped.
#: aioquic's queue has no bound: a proxy short of CPU or congestion window queued
#: seconds of datagrams (600 ms round trips in benchmarks/bench_interop.py). 256 full
#: packets are about what a default UDP socket buffer holds (a burst of an inner
#: connection's window passes), and about 0.1 s at the rate the slow path carries.
MAX_PENDING_DATAGRAMS = 256


def datagram_queue_full(quic: QuicConnection) -> bool:
    """Whether aioquic already holds MAX_PENDING_DATAGRAMS unsent HTTP Datagrams."""
    return len(quic._datagrams_pending) >= MAX_PENDING_DATAGRAMS


def datagram_fits(quic: QuicConnection, http_payload_len: int, stream_id: int) -> bool:
    """Whether an HTTP Datagram of this size fits one QUIC DATAGRAM frame in one packet.

    aioquic queues DATAGRAM frames without checking their size, and one that can
    never fit a packet blocks every later one; callers drop such a payload in
    datagram mode (RFC 9298 section 7.1: not as a DATAGRAM capsule, which would
    carry reliably what PMTU probing needs lost).
    """
    quarter = stream_id // 4
    frame_payload = http_payload_len + (1 if quarter < 64 else 2 if quarter < 16384 else 4)
    remote = quic._remote_max_datagram_frame_size
    if remote is not None and frame_payload > remote:
        return False
    return frame_payload + DATAGRAM_OVERHEAD <= quic._max_datagram_size
