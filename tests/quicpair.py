"""Two in-memory QUIC endpoints (no sockets) and a record of the frames they send."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import QuicEvent
from aioquic.quic.logger import QuicLogger
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hostagent.certs import self_signed_pem
from hostagent.schedulers import ScheduledQuicConnection, StreamScheduler

CLIENT_ADDR = ("1.2.3.4", 1234)  # placeholders: datagrams are handed over in memory
SERVER_ADDR = ("2.3.4.5", 4433)


def server_configuration(**kwargs: object) -> QuicConfiguration:
    cert_pem, key_pem = self_signed_pem()
    config = QuicConfiguration(is_client=False, alpn_protocols=["mp-test"], **kwargs)
    config.certificate = x509.load_pem_x509_certificate(cert_pem)
    config.private_key = serialization.load_pem_private_key(key_pem, password=None)
    return config


@dataclass
class Pair:
    """A client and a server joined in memory, with a fake clock."""

    client: QuicConnection
    server: QuicConnection
    client_logger: QuicLogger
    now: float = 0.0
    server_events: list[QuicEvent] = field(default_factory=list)
    client_events: list[QuicEvent] = field(default_factory=list)

    def pump(self, rounds: int = 1000, step: float = 0.001) -> None:
        """Exchange datagrams (and fire timers) until both sides fall silent."""
        for _ in range(rounds):
            moved = 0
            for src, dst, dst_addr, events in (
                (self.client, self.server, CLIENT_ADDR, self.server_events),
                (self.server, self.client, SERVER_ADDR, self.client_events),
            ):
                for data, _ in src.datagrams_to_send(now=self.now):
                    dst.receive_datagram(data, dst_addr, now=self.now)
                    moved += 1
                while (event := dst.next_event()) is not None:
                    events.append(event)
            self.now += step
            if not moved:
                for conn in (self.client, self.server):
                    timer = conn.get_timer()
                    if timer is not None and timer <= self.now:
                        conn.handle_timer(now=self.now)
                if all(c.get_timer() is None or c.get_timer() > self.now + 1 for c in
                       (self.client, self.server)):
                    return

    def flight(self, lose: Collection[int] = ()) -> int:
        """One round of the client's datagrams, the ones numbered in `lose` (0 is this
        round's first) dropped on the way; the number of datagrams sent."""
        datagrams = self.client.datagrams_to_send(now=self.now)
        for n, (data, _) in enumerate(datagrams):
            if n not in lose:
                self.server.receive_datagram(data, CLIENT_ADDR, now=self.now)
        while (event := self.server.next_event()) is not None:
            self.server_events.append(event)
        return len(datagrams)

    def sent_stream_frames(self) -> list[list[dict]]:
        """Per 1-RTT packet the client sent, its STREAM and RESET_STREAM frames, in order."""
        packets = []
        for trace in self.client_logger.to_dict()["traces"]:
            for event in trace["events"]:
                if event["name"] != "transport:packet_sent":
                    continue
                if event["data"]["header"]["packet_type"] != "1RTT":
                    continue
                frames = [f for f in event["data"]["frames"]
                          if f["frame_type"] in ("stream", "reset_stream")]
                if frames:
                    packets.append(frames)
        return packets


def make_pair(scheduler: StreamScheduler | str | None, max_datagram_size: int = 1200) -> Pair:
    """A handshaken pair; the client uses `scheduler` (None: a plain aioquic connection)."""
    logger = QuicLogger()
    client_config = QuicConfiguration(is_client=True, alpn_protocols=["mp-test"],
                                      max_datagram_size=max_datagram_size, quic_logger=logger)
    client_config.verify_mode = 0  # ssl.CERT_NONE: the certificate is throw-away
    client = (QuicConnection(configuration=client_config) if scheduler is None else
              ScheduledQuicConnection(configuration=client_config, scheduler=scheduler))
    client.connect(SERVER_ADDR, now=0.0)
    server = QuicConnection(
        configuration=server_configuration(max_datagram_size=max_datagram_size),
        original_destination_connection_id=client.original_destination_connection_id)
    pair = Pair(client=client, server=server, client_logger=logger)
    pair.pump()
    assert client._handshake_complete and server._handshake_complete
    return pair
