"""mp-proxy and mp-client over loopback, in this process: settings, both modes, error
statuses, limits, idle close, socket release, inner QUIC and nested scheduling."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aioquic.h3.connection import Setting

from hostagent.masque.client import MasqueClient, TunnelRefused
from hostagent.masque.proxy import NO_CONTROLLER_MESSAGE, AccessPolicy, ProxyTunnel
from hostagent.masque.wire import encode_capsule, encode_udp_payload, parse_proxy_status, udp_path
from hostagent.schedulers import StreamMeta
from tests.masque.helpers import (
    LOOPBACK,
    connect_udp_headers,
    environment,
    open_fds,
    raw_request,
    run,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def test_handshake_exchanges_both_settings_and_accepts_extended_connect() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            got = client.h3.received_settings or {}
            assert got.get(Setting.ENABLE_CONNECT_PROTOCOL) == 1
            assert got.get(Setting.H3_DATAGRAM) == 1
            assert Setting.ENABLE_WEBTRANSPORT not in got
            tunnel = await client.open_udp(LOOPBACK, env.udp_port)
            (server_side,) = env.proxy.connections
            assert server_side.h3 is not None
            assert (server_side.h3.received_settings or {}).get(Setting.H3_DATAGRAM) == 1
            assert tunnel.mode == "datagram"
            assert env.proxy.stats["tunnels_opened"] == 1

    run(main())


@pytest.mark.parametrize("mode", ["datagram", "stream"])
def test_udp_both_ways(mode: str) -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, mode=mode)
            assert tunnel.mode == mode
            for i in range(20):
                tunnel.send(b"ping %d" % i)
            got = sorted([await tunnel.recv(timeout=5) for _ in range(20)])
            assert got == sorted(b"ping %d" % i for i in range(20))
            big = bytes(range(256)) * 6  # 1536 B: more than one DATAGRAM frame can carry
            tunnel.send(big)
            (proxied,) = env.proxy.tunnels
            assert proxied.mode == mode
            if mode == "stream":
                assert await tunnel.recv(timeout=5) == big
                assert proxied.counters.up_packets == 21 and proxied.counters.down_packets == 21
            else:  # RFC 9298 section 7.1: dropped, never sent as a capsule
                assert tunnel.too_large == 1
                assert proxied.counters.up_packets == 20

    run(main())


def test_datagram_mode_carries_up_to_the_frame_limit_and_drops_beyond() -> None:
    """1280-byte payloads (a usual QUIC packet size) fit a DATAGRAM frame of a 1350-byte
    outer packet both ways; a target's payload too large for one is dropped and counted by
    the proxy, not sent as a capsule (RFC 9298 section 7.1; masque-go drops capsules)."""
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, mode="datagram")
            for size in (1200, 1280, 1300):
                payload = bytes([size % 256]) * size
                tunnel.send(payload)
                assert await tunnel.recv(timeout=5) == payload
            (proxied,) = env.proxy.tunnels
            assert tunnel.too_large == 0 and proxied.counters.down_too_large == 0
            # the target answers bigger than the frame limit towards the client
            loop = asyncio.get_running_loop()
            target_side, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(LOOPBACK, 0))
            try:
                port = target_side.get_extra_info("sockname")[1]
                tunnel2 = await client.open_udp(LOOPBACK, port, mode="datagram")
                tunnel2.send(b"hello")
                await wait_for(lambda: any(t.counters.up_packets for t in env.proxy.tunnels
                                           if t.target.port == port), what="the hello")
                proxied2 = next(t for t in env.proxy.tunnels if t.target.port == port)
                assert proxied2.transport is not None
                sockname = proxied2.transport.get_extra_info("sockname")
                target_side.sendto(b"y" * 1400, sockname)
                target_side.sendto(b"z" * 1000, sockname)
                assert await tunnel2.recv(timeout=5) == b"z" * 1000
                assert proxied2.counters.down_too_large == 1
                assert proxied2.counters.down_packets == 2
            finally:
                target_side.close()

    run(main())


def test_the_proxy_queues_a_bounded_number_of_datagrams() -> None:
    """aioquic's queue of unsent DATAGRAM frames has no bound; the proxy drops and counts
    what finds MAX_PENDING_DATAGRAMS already waiting, instead of queueing seconds of delay
    (benchmarks/bench_interop.py saw 600 ms round trips). Here the proxy cannot send at all
    for a while (its transmit is held), so the echoes pile up."""
    from hostagent.masque.h3 import MAX_PENDING_DATAGRAMS

    count = MAX_PENDING_DATAGRAMS + 44

    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, mode="datagram")
            (proto,) = env.proxy.connections
            held = proto.transmit
            proto.transmit = lambda: None  # type: ignore[method-assign]
            for i in range(count):
                tunnel.send(b"q%03d" % i)
                if i % 50 == 49:
                    await asyncio.sleep(0.02)  # the client's own queue drains meanwhile
            assert tunnel.queue_full == 0
            (proxied,) = env.proxy.tunnels
            await wait_for(lambda: proxied.counters.down_packets == count, what="the echoes")
            assert proxied.counters.down_queue_full == count - MAX_PENDING_DATAGRAMS
            proto.transmit = held  # type: ignore[method-assign]
            proto.transmit()
            got = [await tunnel.recv(timeout=5) for _ in range(MAX_PENDING_DATAGRAMS)]
            assert got == [b"q%03d" % i for i in range(MAX_PENDING_DATAGRAMS)]
            with pytest.raises(TimeoutError):
                await tunnel.recv(timeout=0.3)

    run(main())


def test_stream_mode_when_the_proxy_offers_no_datagrams() -> None:
    async def main() -> None:
        async with environment(datagrams=False) as env, env.client() as client:
            assert Setting.H3_DATAGRAM not in (client.h3.received_settings or {})
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, mode="datagram")
            assert tunnel.mode == "stream"
            tunnel.send(b"x")
            assert await tunnel.recv(timeout=5) == b"x"

    run(main())


def test_unknown_context_ids_and_capsule_types_are_dropped() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, mode="stream")
            h3 = client._proto.h3
            sid = tunnel.stream_id
            h3.send_data(sid, encode_capsule(0x2A, b"unknown type"), end_stream=False)
            h3.send_data(sid, encode_capsule(0x00, encode_udp_payload(b"ctx2", context_id=2)),
                         end_stream=False)
            h3.send_datagram(sid, encode_udp_payload(b"ctx4", context_id=4))
            tunnel.send(b"real")
            assert await tunnel.recv(timeout=5) == b"real"
            (proxied,) = env.proxy.tunnels
            assert proxied.counters.ignored_capsules == 1
            assert proxied.counters.up_packets == 1
            await wait_for(lambda: proxied.counters.dropped_context == 2, what="two drops")

    run(main())


@pytest.mark.parametrize(("path", "overrides", "status"), [
    ("/masque/192.0.2.6/443/", {}, 400),  # does not match the template
    ("/.well-known/masque/udp/192.0.2.6/443/extra/", {}, 400),
    (udp_path("no such host!", 443), {}, 400),
    ("/.well-known/masque/udp/fe80%3A%3A1%25lo/443/", {}, 400),  # zone identifier
    (udp_path("127.0.0.1", 0), {}, 400),
    ("/.well-known/masque/udp/127.0.0.1/70000/", {}, 400),
    (udp_path("127.0.0.1", 9), {"p_scheme": b"http"}, 400),
    (udp_path("127.0.0.1", 9), {"capsule_protocol": b"?0"}, 400),
    (udp_path("127.0.0.1", 9), {"masque_mode": b"carrier-pigeon"}, 400),
    (udp_path("127.0.0.1", 9), {"p_protocol": b"connect-ip"}, 501),
    (udp_path("127.0.0.1", 9), {"p_method": b"GET", "p_protocol": None}, 405),
])
def test_malformed_requests(path: str, overrides: dict[str, bytes | None], status: int) -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            answer = await raw_request(client, connect_udp_headers(path, **overrides))
            assert answer[b":status"] == str(status).encode()
            assert parse_proxy_status(answer[b"proxy-status"].decode())["error"] == (
                "http_request_error")
            assert not env.proxy.tunnels
            assert env.proxy.refusals == {status: 1}

    run(main())


def test_loopback_is_refused_by_default_403() -> None:
    async def main() -> None:
        async with environment(allow=[]) as env, env.client() as client:
            with pytest.raises(TunnelRefused) as refused:
                await client.open_udp(LOOPBACK, env.udp_port)
            assert refused.value.status == 403
            assert refused.value.proxy_status["error"] == "destination_ip_prohibited"
            assert "loopback" in refused.value.proxy_status["details"]
            for host in ("::1", "169.254.1.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"):
                with pytest.raises(TunnelRefused) as refused:
                    await client.open_udp(host, 9)
                assert refused.value.status == 403, host

    run(main())


def test_policy_rules() -> None:
    import ipaddress
    own = ipaddress.ip_address("10.1.2.3")
    policy = AccessPolicy([], own=[own])
    assert policy.refusal(own) is not None
    assert policy.refusal(ipaddress.ip_address("10.1.2.4")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is not None
    assert policy.refusal(ipaddress.ip_address("fe80::1")) is not None
    narrow = AccessPolicy(["10.9.0.0/16"])
    assert narrow.refusal(ipaddress.ip_address("10.9.1.1")) is None
    assert narrow.refusal(ipaddress.ip_address("10.1.2.4")) is not None


def test_outside_the_allow_list_403() -> None:
    async def main() -> None:
        async with environment(allow=["127.0.0.2/32"]) as env, env.client() as client:
            with pytest.raises(TunnelRefused) as refused:
                await client.open_udp("127.0.0.1", env.udp_port)
            assert refused.value.status == 403

    run(main())


def test_tunnel_limit_429() -> None:
    async def main() -> None:
        async with environment(max_tunnels=3) as env, env.client() as client:
            tunnels = [await client.open_udp(LOOPBACK, env.udp_port) for _ in range(3)]
            with pytest.raises(TunnelRefused) as refused:
                await client.open_udp(LOOPBACK, env.udp_port)
            assert refused.value.status == 429
            assert refused.value.proxy_status["error"] == "connection_limit_reached"
            tunnels[0].close()
            await wait_for(lambda: len(env.proxy.tunnels) == 2, what="a tunnel to close")
            again = await client.open_udp(LOOPBACK, env.udp_port)
            again.send(b"ok")
            assert await again.recv(timeout=5) == b"ok"

    run(main())


def test_silent_target_times_out_and_releases_its_socket() -> None:
    async def main() -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((LOOPBACK, 0))
        try:
            async with environment(idle_timeout=0.5) as env, env.client() as client:
                before = open_fds()
                tunnel = await client.open_udp(LOOPBACK, silent.getsockname()[1])
                assert open_fds() == before + 1  # the tunnel's socket
                tunnel.send(b"anyone there?")
                async with asyncio.timeout(5):
                    await tunnel.closed.wait()
                assert tunnel.close_reason == "the proxy ended the stream"
                assert silent.recv(100) == b"anyone there?"
                await wait_for(lambda: open_fds() == before, what="the socket to close")
                assert env.proxy.stats["tunnels_closed"] == 1 and not env.proxy.tunnels
        finally:
            silent.close()

    run(main())


def test_icmp_unreachable_closes_the_tunnel() -> None:
    async def main() -> None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now: the kernel answers port unreachable
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, port)
            tunnel.send(b"x")
            async with asyncio.timeout(5):
                await tunnel.closed.wait()
            await wait_for(lambda: not env.proxy.tunnels, what="the tunnel to go")

    run(main())


def test_fifty_concurrent_tunnels_on_one_connection() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnels = await asyncio.gather(*(
                client.open_udp(LOOPBACK, env.udp_port, mode=("stream", "datagram")[i % 2])
                for i in range(50)))
            assert len({t.stream_id for t in tunnels}) == 50
            for i, tunnel in enumerate(tunnels):
                tunnel.send(b"tunnel %d" % i)
            answers = await asyncio.gather(*(t.recv(timeout=10) for t in tunnels))
            assert answers == [b"tunnel %d" % i for i in range(50)]
            assert len(env.proxy.tunnels) == 50
            assert len({t.transport for t in env.proxy.tunnels}) == 50  # a socket each

    run(main())


def test_client_disconnect_mid_transfer_releases_every_socket() -> None:
    async def main() -> None:
        async with environment() as env:
            before = open_fds()
            client = MasqueClient(LOOPBACK, env.proxy_port)
            await client.connect()
            tunnels = [await client.open_udp(LOOPBACK, env.quic_port, mode=("stream",
                       "datagram")[i % 2]) for i in range(10)]
            inners = await asyncio.gather(*(t.quic() for t in tunnels))
            pending = [inner.send(b"z" * 200_000) for inner in inners]
            await wait_for(lambda: sum(t.counters.down_bytes for t in env.proxy.tunnels)
                           > 100_000, what="the transfer to be under way")
            assert not all(p.done() for p in pending)
            assert len(env.proxy.tunnels) == 10
            await client.close()  # mid-transfer
            await wait_for(lambda: not env.proxy.tunnels, what="every tunnel to close")
            await wait_for(lambda: open_fds() == before, what="every socket to be released")
            assert env.proxy.stats["tunnels_closed"] == 10
            for p in pending:
                p.cancel()

    run(main())


@pytest.mark.parametrize("mode", ["datagram", "stream"])
def test_inner_quic_handshake_and_echo(mode: str) -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, mode=mode)
            inner = await tunnel.quic(scheduler="abs", timeout=10)
            assert inner.quic._handshake_complete
            payloads = [bytes([i]) * (1000 * (i + 1)) for i in range(5)]
            answers = await asyncio.gather(*(inner.request(p, StreamMeta(priority=i),
                                                           timeout=10)
                                             for i, p in enumerate(payloads)))
            assert answers == payloads
            inner.close()

    run(main())


def test_fast_path_request_stays_on_the_slow_path(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")

    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, fastpath=True)
            assert tunnel.fastpath == "slow path"
            tunnel.send(b"still relayed")
            assert await tunnel.recv(timeout=5) == b"still relayed"
            plain = await client.open_udp(LOOPBACK, env.udp_port)
            assert plain.fastpath is None

    run(main())
    assert NO_CONTROLLER_MESSAGE in caplog.text
    assert "left it on the slow path" in caplog.text


@pytest.mark.parametrize(("scheduler", "first"), [("abs", "high"), ("fcfs", "low")])
def test_outer_scheduler_orders_tunnels(scheduler: str, first: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outer ABS sends the high-priority tunnel's capsules first, though it was opened
    second; FCFS (the control) sends the first-opened tunnel's first. The order is read
    where the proxy takes each payload out of the outer connection (the UDP sockets'
    own buffering on loopback would blur it at the targets)."""
    arrivals: list[int] = []
    original = ProxyTunnel.from_client

    def record(self: ProxyTunnel, payload: bytes) -> None:
        arrivals.append(self.rank)
        original(self, payload)

    monkeypatch.setattr(ProxyTunnel, "from_client", record)

    async def main() -> None:
        sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for sink in sinks:
            sink.bind((LOOPBACK, 0))
        try:
            async with environment() as env, env.client(scheduler=scheduler) as client:
                low = await client.open_udp(LOOPBACK, sinks[0].getsockname()[1], mode="stream",
                                            meta=StreamMeta(priority=5))
                high = await client.open_udp(LOOPBACK, sinks[1].getsockname()[1],
                                             mode="stream", meta=StreamMeta(priority=1))
                ranks = sorted(t.rank for t in env.proxy.tunnels)
                assert ranks == [1, 5]  # the proxy ranks the return direction the same way
                for _ in range(N_ORDERED):  # queued in one go, before the connection sends
                    low.send(b"L" * 1000)
                for _ in range(N_ORDERED):
                    high.send(b"H" * 1000)
                await wait_for(lambda: len(arrivals) == 2 * N_ORDERED, timeout=15,
                               what="all data")
        finally:
            for sink in sinks:
                sink.close()

    run(main())
    order = ["high" if rank == 1 else "low" for rank in arrivals]
    other = "low" if first == "high" else "high"
    last_first = max(i for i, name in enumerate(order) if name == first)
    overtaken = sum(1 for name in order[:last_first] if name == other)
    assert overtaken <= N_ORDERED // 20, (scheduler, overtaken, "".join(o[0] for o in order))


N_ORDERED = 100
