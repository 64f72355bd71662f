"""HTTP Datagrams that reach mp-proxy before their tunnel exists are kept (bounded, for a few
seconds) and relayed once it opens. picoquic's picomask client sends the inner connection's
Initial right behind its CONNECT-UDP request, as RFC 9298 section 5 allows; mp-proxy used
to drop it (`datagrams_without_tunnel`), costing the inner handshake a retransmission
timeout (found in the picomask interop trial, docs/interop.md)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.h3.events import DatagramReceived, HeadersReceived
from aioquic.quic.events import QuicEvent

from hostagent.masque.early_datagrams import EarlyDatagrams
from hostagent.masque.h3 import MasqueH3Connection, outer_configuration
from hostagent.masque.wire import decode_udp_payload, encode_udp_payload, udp_path
from tests.masque.helpers import LOOPBACK, connect_udp_headers, environment, run
from tests.masque.test_late_settings import LateSettingsH3

pytestmark = pytest.mark.timeout(60)


# -- the buffer ------------------------------------------------------------------------------

def test_the_buffer_keeps_payloads_per_stream_in_order() -> None:
    buf = EarlyDatagrams(limit=4, ttl=5.0)
    assert buf.add(0, b"a", 0.0) and buf.add(4, b"x", 0.0) and buf.add(0, b"b", 0.1)
    assert buf.take(0, 0.2) == [b"a", b"b"]
    assert buf.take(0, 0.2) == []
    assert len(buf) == 1
    assert buf.discard(4) == 1 and len(buf) == 0


def test_the_buffer_is_bounded_and_expires() -> None:
    buf = EarlyDatagrams(limit=2, ttl=1.0)
    assert buf.add(0, b"1", 0.0) and buf.add(0, b"2", 0.5)
    assert not buf.add(0, b"3", 0.6)
    assert buf.overflowed == 1
    assert buf.take(0, 1.2) == [b"2"]  # the first waited longer than the TTL
    assert buf.expired == 1
    assert buf.add(8, b"4", 1.3)


# -- the proxy -------------------------------------------------------------------------------

class Client(QuicConnectionProtocol):
    """A raw HTTP/3 client: request headers, HTTP Datagrams and the proxy's answers."""

    h3_class: type[MasqueH3Connection] = MasqueH3Connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = self.h3_class(self._quic)
        self.response: asyncio.Future[dict[bytes, bytes]] = (
            asyncio.get_event_loop().create_future())
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and not self.response.done():
                self.response.set_result(dict(h3_event.headers))
            elif isinstance(h3_event, DatagramReceived):
                self.datagrams.put_nowait(h3_event.data)


class LateSettingsClient(Client):
    h3_class = LateSettingsH3


async def _exchange(env: Any, client_class: type[Client], order: str,
                    path: str | None = None) -> tuple[dict[bytes, bytes], list[bytes]]:
    """Send a request and one HTTP Datagram ("PING") in `order`; the response and the
    UDP payloads that came back within a second."""
    config = outer_configuration(is_client=True)
    config.verify_mode = ssl.CERT_NONE
    async with connect(LOOPBACK, env.proxy_port, configuration=config,
                       create_protocol=client_class) as proto:
        client: Client = proto  # type: ignore[assignment]
        sid = client._quic.get_next_available_stream_id()
        headers = connect_udp_headers(path or udp_path(LOOPBACK, env.udp_port))
        datagram = encode_udp_payload(b"PING")
        if order == "datagram first":
            client.h3.send_datagram(sid, datagram)
            client.transmit()
            await asyncio.sleep(0.1)
            client.h3.send_headers(sid, headers)
        else:
            client.h3.send_headers(sid, headers)
            client.h3.send_datagram(sid, datagram)
        client.transmit()
        if isinstance(client.h3, LateSettingsH3):
            await asyncio.sleep(0.3)  # the request waits for these; the datagram arrived
            client.h3.send_settings()
            client.transmit()
        answer = await asyncio.wait_for(client.response, 5)
        echoed = []
        with_deadline = asyncio.get_running_loop().time() + 1.0
        while (left := with_deadline - asyncio.get_running_loop().time()) > 0:
            try:
                data = await asyncio.wait_for(client.datagrams.get(), left)
            except TimeoutError:
                break
            context, payload = decode_udp_payload(data)
            assert context == 0
            echoed.append(payload)
        return answer, echoed


@pytest.mark.parametrize("case", ["datagram behind the request, SETTINGS late",
                                  "datagram first"])
def test_a_datagram_before_the_tunnel_is_relayed_once_it_opens(case: str) -> None:
    async def main() -> None:
        async with environment() as env:
            client_class = LateSettingsClient if "SETTINGS late" in case else Client
            order = "datagram first" if case == "datagram first" else "request first"
            answer, echoed = await _exchange(env, client_class, order)
            assert answer[b":status"] == b"200"
            assert echoed == [b"PING"]
            assert env.proxy.stats["early_datagrams_relayed"] == 1
            assert env.proxy.stats["datagrams_without_tunnel"] == 0
            assert env.targets.udp is not None and env.targets.udp.datagrams == 1

    run(main())


def test_a_datagram_of_a_refused_request_is_dropped() -> None:
    async def main() -> None:
        async with environment(allow=["192.0.2.0/24"]) as env:
            answer, echoed = await _exchange(env, Client, "request first")
            assert answer[b":status"] == b"403"
            assert echoed == []
            assert env.proxy.stats["early_datagrams_relayed"] == 0
            assert env.proxy.stats["datagrams_without_tunnel"] == 1
            assert env.targets.udp is not None and env.targets.udp.datagrams == 0

    run(main())
