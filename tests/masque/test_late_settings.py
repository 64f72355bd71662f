"""A CONNECT-UDP request that overtakes the client's SETTINGS (they travel on another
stream; a lost packet delays them): the proxy waits for them before it picks the tunnel's
mode. It used to pick stream mode at once, because it did not yet know the client takes
HTTP Datagrams; masque-go's client, which drops capsules, then received nothing (found
under load by benchmarks/bench_interop.py; see docs/interop.md)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.h3.connection import FrameType, StreamType, encode_frame, encode_settings
from aioquic.h3.events import HeadersReceived
from aioquic.quic.events import QuicEvent

from hostagent.masque.h3 import MasqueH3Connection, outer_configuration
from hostagent.masque.wire import udp_path
from tests.masque.helpers import LOOPBACK, connect_udp_headers, environment, run

pytestmark = pytest.mark.timeout(60)


class LateSettingsH3(MasqueH3Connection):
    """A client H3 connection that sends its SETTINGS only when told to."""

    def _init_connection(self) -> None:
        self._local_encoder_stream_id = self._create_uni_stream(StreamType.QPACK_ENCODER)
        self._local_decoder_stream_id = self._create_uni_stream(StreamType.QPACK_DECODER)

    def send_settings(self) -> None:
        self._local_control_stream_id = self._create_uni_stream(StreamType.CONTROL)
        self._sent_settings = self._get_local_settings()
        self._quic.send_stream_data(self._local_control_stream_id, encode_frame(
            FrameType.SETTINGS, encode_settings(self._sent_settings)))


class Client(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = LateSettingsH3(self._quic)
        self.response: asyncio.Future[dict[bytes, bytes]] = (
            asyncio.get_event_loop().create_future())

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and not self.response.done():
                self.response.set_result(dict(h3_event.headers))


def test_a_request_before_the_client_settings_waits_for_them() -> None:
    async def main() -> None:
        async with environment() as env:
            config = outer_configuration(is_client=True)
            config.verify_mode = ssl.CERT_NONE
            async with connect(LOOPBACK, env.proxy_port, configuration=config,
                               create_protocol=Client) as proto:
                client: Client = proto  # type: ignore[assignment]
                sid = client._quic.get_next_available_stream_id()
                # masque-go's request: no masque-mode header, datagrams wanted
                headers = connect_udp_headers(udp_path(LOOPBACK, env.udp_port))
                client.h3.send_headers(sid, headers)
                client.transmit()
                await asyncio.sleep(0.3)
                assert not client.response.done(), "the proxy answered before the SETTINGS"
                client.h3.send_settings()
                client.transmit()
                answer = await asyncio.wait_for(client.response, 5)
                assert answer[b":status"] == b"200"
                assert answer[b"masque-mode"] == b"datagram"
                (tunnel,) = env.proxy.tunnels
                assert tunnel.mode == "datagram"

    run(main())
