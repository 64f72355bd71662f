"""The LLM back-end: answers each request with as many bytes as it received (echo).

One process serves QUIC on a UDP port and TLS over TCP on the same TCP port,
so the stream schedulers and the TCP baselines meet the same back-end. Each
QUIC request stream is scheduled with the priority and deadline its header
declares; a malformed header gets the stream reset (and is counted).

    python -m hostagent.llm.backend --listen 0.0.0.0:4433 --scheduler edf
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl
import sys

from aioquic.asyncio import serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived, StreamReset

from clikit import run_until_signalled, setup_logging
from clikit.args import parse_host_port
from hostagent.certs import credential_files
from hostagent.llm.wire import HEADER_SIZE, MalformedRequest, RequestHeader
from hostagent.schedulers import (
    SCHEDULERS,
    ScheduledQuicConnection,
    StreamMeta,
    make_scheduler,
    scheduled_protocol,
)

ALPN = "mp-llm"
#: RESET_STREAM / STOP_SENDING code for a request whose header is malformed.
MALFORMED_REQUEST = 0x4D51
#: Flow-control windows large enough that a whole request mix is never window-bound.
MAX_DATA = 64 * 1024 * 1024
MAX_STREAM_DATA = 4 * 1024 * 1024

log = logging.getLogger("mp-llm-backend")


def quic_configuration(is_client: bool) -> QuicConfiguration:
    """The QUIC settings both ends of the workload use."""
    config = QuicConfiguration(is_client=is_client, alpn_protocols=[ALPN],
                               max_data=MAX_DATA, max_stream_data=MAX_STREAM_DATA)
    return config


class BackendProtocol(QuicConnectionProtocol):
    """Echoes each request stream, scheduled by the declared priority and deadline."""

    malformed = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._headers: dict[int, bytearray | None] = {}  # None once parsed

    @property
    def connection(self) -> ScheduledQuicConnection:
        return self._quic  # type: ignore[return-value]

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            self._on_data(event)
        elif isinstance(event, StreamReset):
            self._headers.pop(event.stream_id, None)
            # The request was abandoned: abandon the answer too (unless it is complete
            # and already discarded, which aioquic reports with ValueError).
            with contextlib.suppress(ValueError):
                self._quic.reset_stream(event.stream_id, event.error_code)

    def _on_data(self, event: StreamDataReceived) -> None:
        sid = event.stream_id
        pending = self._headers.setdefault(sid, bytearray())
        data = event.data
        if pending is not None:
            pending += data
            if len(pending) < HEADER_SIZE and not event.end_stream:
                return
            if self._declare(sid, pending) is None:
                return
            data, self._headers[sid] = bytes(pending), None
        self._quic.send_stream_data(sid, data, end_stream=event.end_stream)

    def _declare(self, sid: int, head: bytes | bytearray) -> RequestHeader | None:
        """Decode the request header at the start of `head` and give the answer stream its
        class priority and deadline; a malformed one is counted and the stream refused
        (None)."""
        try:
            header = RequestHeader.decode(bytes(head))
        except MalformedRequest as exc:
            type(self).malformed += 1
            log.warning("stream %d: malformed request: %s", sid, exc)
            self._quic.stop_stream(sid, MALFORMED_REQUEST)
            self._quic.reset_stream(sid, MALFORMED_REQUEST)
            return None
        # The header's budget counts from issue; about half an RTT has passed since.
        rtt = self._quic._loss._rtt_smoothed or 0.0
        self.connection.set_stream_meta(sid, StreamMeta(
            priority=header.priority,
            deadline=self._loop.time() + header.deadline_ms / 1000 - rtt / 2,
            traffic_class=header.cls.name))
        return header


async def handle_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """TLS/TCP baseline: requests follow each other on the byte stream; echo each."""
    try:
        while True:
            try:
                head = await reader.readexactly(HEADER_SIZE)
            except asyncio.IncompleteReadError:
                return
            header = RequestHeader.decode(head)
            writer.write(head)
            left = header.payload_len
            while left:
                chunk = await reader.read(min(left, 65536))
                if not chunk:
                    return
                left -= len(chunk)
                writer.write(chunk)
                await writer.drain()
            await writer.drain()
    except (MalformedRequest, ConnectionError) as exc:
        log.warning("tcp request dropped: %s", exc)
    finally:
        writer.close()


async def serve_backend(host: str, port: int, scheduler: str,
                        certificate: str | None = None, private_key: str | None = None,
                        ready: asyncio.Event | None = None,
                        stop: asyncio.Event | None = None) -> None:
    """Serve QUIC (UDP) and TLS over TCP on host:port until `stop` is set."""
    make_scheduler(scheduler)  # fail early on a bad name
    config = quic_configuration(is_client=False)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with credential_files(certificate, private_key) as (cert, key):
        config.load_cert_chain(cert, key)
        tls.load_cert_chain(cert, key)
    quic_server = await serve(host, port, configuration=config,
                              create_protocol=scheduled_protocol(
                                  BackendProtocol, lambda: make_scheduler(scheduler)))
    tcp_server = await asyncio.start_server(handle_tcp, host, port, ssl=tls)
    log.info("serving QUIC and TLS/TCP on %s:%d, scheduler %s", host, port, scheduler)
    if ready is not None:
        ready.set()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        quic_server.close()
        tcp_server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hostagent.llm.backend",
        description="LLM back-end: echoes requests over QUIC streams (scheduled) and over "
        "TLS/TCP, on the same port number.")
    parser.add_argument("--listen", default="0.0.0.0:4433", metavar="HOST:PORT")
    parser.add_argument("--scheduler", default="aioquic-default", choices=list(SCHEDULERS))
    parser.add_argument("--certificate", help="PEM certificate (default: self-signed)")
    parser.add_argument("--private-key", help="PEM key (default: self-signed)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        host, port = parse_host_port(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    run_until_signalled(lambda stop: serve_backend(
        host, port, args.scheduler, args.certificate, args.private_key, stop=stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
