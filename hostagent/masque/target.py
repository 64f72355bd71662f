"""Tunnel targets for tests and experiments: a QUIC echo server and a UDP echo server.

The QUIC echo server answers every stream with the bytes it received (the FIN
too), scheduled by the chosen stream discipline; its ALPN is `ECHO_ALPN`. The
UDP echo server sends every datagram back to where it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import QuicEvent, StreamDataReceived, StreamReset

from hostagent.certs import credential_files
from hostagent.schedulers import ScheduledQuicConnection, make_scheduler

log = logging.getLogger("mp-target")

ECHO_ALPN = "mp-echo"
#: Flow-control windows of the inner connections (both ends), never the bottleneck.
INNER_MAX_DATA = 16 * 1024 * 1024
INNER_MAX_STREAM_DATA = 4 * 1024 * 1024


def echo_configuration(is_client: bool, idle_timeout: float = 60.0) -> QuicConfiguration:
    """QUIC settings of the echo service (inner connections use them through tunnels)."""
    return QuicConfiguration(is_client=is_client, alpn_protocols=[ECHO_ALPN],
                             max_data=INNER_MAX_DATA, max_stream_data=INNER_MAX_STREAM_DATA,
                             idle_timeout=idle_timeout)


class EchoProtocol(QuicConnectionProtocol):
    """Sends every stream's data back on the same stream."""

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
        elif isinstance(event, StreamReset):
            with contextlib.suppress(ValueError):
                self._quic.reset_stream(event.stream_id, event.error_code)


class UdpEcho(asyncio.DatagramProtocol):
    """Echoes each datagram to its sender; counts them."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams += 1
        assert self.transport is not None
        self.transport.sendto(data, addr)


class EchoTargets:
    """The QUIC and/or UDP echo servers of one `mp-target` process."""

    def __init__(self, scheduler: str = "rr", max_streams: int | None = None) -> None:
        make_scheduler(scheduler)
        if max_streams is not None and max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self.scheduler = scheduler
        self.max_streams = max_streams
        self.quic_server: QuicServer | None = None
        self.quic_port: int | None = None
        self.udp: UdpEcho | None = None
        self.udp_port: int | None = None

    async def start_quic(self, host: str, port: int, certificate: str | None = None,
                         private_key: str | None = None) -> int:
        """QUIC echo on host:port (0: a free port); the bound port."""
        config = echo_configuration(is_client=False)
        with credential_files(certificate, private_key) as (cert, key):
            config.load_cert_chain(cert, key)
        scheduler, max_streams = self.scheduler, self.max_streams

        def create(connection: QuicConnection, **kwargs: Any) -> EchoProtocol:
            if max_streams is not None:  # aioquic has no setting: its limit before the handshake
                limit = connection._local_max_streams_bidi
                limit.value = limit.sent = max_streams
            return EchoProtocol(ScheduledQuicConnection.adopt(connection, scheduler), **kwargs)

        self.quic_server = await serve(host, port, configuration=config, create_protocol=create)
        transport = self.quic_server._transport
        assert transport is not None  # serve() returns a bound server
        self.quic_port = transport.get_extra_info("sockname")[1]
        log.info("QUIC echo on %s:%d (ALPN %s, scheduler %s)", host, self.quic_port,
                 ECHO_ALPN, scheduler)
        return self.quic_port

    async def start_udp(self, host: str, port: int) -> int:
        """UDP echo on host:port (0: a free port); the bound port."""
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(UdpEcho, local_addr=(host, port))
        self.udp = proto
        self.udp_port = transport.get_extra_info("sockname")[1]
        log.info("UDP echo on %s:%d", host, self.udp_port)
        return self.udp_port

    def close(self) -> None:
        """Stop both servers."""
        if self.quic_server is not None:
            self.quic_server.close()
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.close()
