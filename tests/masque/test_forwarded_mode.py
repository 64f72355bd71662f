"""Forwarded mode (draft-ietf-masque-quic-proxy-06) end to end on loopback, in this process:
mp-proxy's own software forwarding, the aioquic client's registrations and CID swaps,
connection-ID rotation mid-transfer, refusals and fallback, and stream resets on violations."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from hostagent.masque import proxy as proxy_mod
from hostagent.masque import quic_proxy_wire as w
from hostagent.masque.client import InnerConnection, MasqueError, UdpTunnel
from hostagent.masque.forwarding import TO_CLIENT, TO_TARGET, ForwardingRule, FourTuple
from hostagent.masque.proxy import MasqueProxy, ProxySettings, ProxyTunnel
from hostagent.masque.quic_proxy import Negotiation
from hostagent.masque.wire import H3_DATAGRAM_ERROR
from tests.masque.helpers import LOOPBACK, Env, environment, run, wait_for

pytestmark = pytest.mark.timeout(60)
PAYLOAD = bytes(range(256)) * 1200  # 300 KB: hundreds of packets each way


def _proxied(env: Env) -> ProxyTunnel:
    (tunnel,) = env.proxy.tunnels
    return tunnel


async def _forwarding_ready(tunnel: UdpTunnel, inner: InnerConnection) -> None:
    """Wait until the target CID in use has a target VCID and a client VCID is accepted."""
    fwd = tunnel.quic_proxy
    assert fwd is not None

    def ready() -> bool:
        inner._pump()
        return (inner.quic._peer_cid.cid in fwd.target_vcids
                and len(tunnel.client._proto.vcid_index) > 0)

    await wait_for(ready, what="forwarded mode in both directions")


def _target_connection(env: Env) -> Any:
    """The echo target's server-side protocol of the one inner connection."""
    assert env.targets.quic_server is not None
    (proto,) = set(env.targets.quic_server._protocols.values())
    return proto


def test_transfer_starts_tunnelled_switches_to_forwarded_and_survives_cid_rotation() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
            assert tunnel.forwarding and tunnel.quic_forwarding_reason == ""
            inner = await tunnel.quic(timeout=10)
            proxied = _proxied(env)
            c = proxied.counters
            # the handshake (long headers) went through the tunnel
            assert c.up_packets > 0 and c.down_packets > 0
            await _forwarding_ready(tunnel, inner)

            # phase 1: forwarded in both directions, nothing relayed as HTTP Datagrams
            relayed = (c.up_packets, c.down_packets)
            forwarded = (c.forwarded_up_packets, c.forwarded_down_packets)
            assert await inner.request(PAYLOAD, timeout=20) == PAYLOAD
            assert (c.up_packets, c.down_packets) == relayed
            assert c.forwarded_up_packets - forwarded[0] > 100
            assert c.forwarded_down_packets - forwarded[1] > 100
            assert env.proxy.forwarder.counters.to_client_packets == c.forwarded_down_packets
            fwd = tunnel.quic_proxy
            assert fwd is not None
            # what the client sent with VCIDs is what the proxy forwarded (at most: the
            # loop may drop a datagram when a socket buffer fills), and the other way round
            assert c.forwarded_up_packets <= fwd.counters.sent
            assert fwd.counters.received <= c.forwarded_down_packets
            assert fwd.counters.received > 100 and fwd.counters.tunnelled_short == 0

            # phase 2: both ends switch connection IDs while a transfer is in flight
            state = proxied.quic_proxy
            assert state is not None
            registrations = state.state.counters.registrations
            old_target_cid = inner.quic._peer_cid.cid
            target = _target_connection(env)
            old_client_cid = target._quic._peer_cid.cid
            down = c.forwarded_down_packets
            echo = inner.send(PAYLOAD)
            await wait_for(lambda: c.forwarded_down_packets - down > 50,
                           what="the second transfer under way")
            inner.quic.change_connection_id()  # RETIRE_CONNECTION_ID to the target
            inner._pump()
            target._quic.change_connection_id()  # and the target retires ours
            target.transmit()
            async with asyncio.timeout(20):
                assert await echo == PAYLOAD
            assert inner.quic._peer_cid.cid != old_target_cid
            assert target._quic._peer_cid.cid != old_client_cid
            # the retired connection IDs were closed, their replacements registered
            await wait_for(lambda: old_target_cid not in state.state.target_cids
                           and old_client_cid not in state.state.client_cids,
                           what="CLOSE_TARGET_CID and CLOSE_CLIENT_CID")
            await wait_for(lambda: state.state.counters.registrations >= registrations + 2,
                           what="the replacements' registrations")
            assert state.state.counters.closed_by_client >= 2
            # and the new ones are forwarded
            before = (c.forwarded_up_packets, c.forwarded_down_packets)
            assert await inner.request(PAYLOAD[:50_000], timeout=20) == PAYLOAD[:50_000]
            assert c.forwarded_up_packets > before[0] and c.forwarded_down_packets > before[1]
            assert inner.quic._peer_cid.cid in fwd.target_vcids
            assert env.proxy.stats["forwarded_up_packets"] == 0  # totals land at close
            inner.close()
            tunnel.close()
            await wait_for(lambda: not env.proxy.tunnels, what="the tunnel to close")
            assert env.proxy.stats["forwarded_down_packets"] == c.forwarded_down_packets
            assert len(env.proxy.forwarder) == 0  # every rule went with the stream

    run(main(), timeout=50)


def test_proxy_without_forwarded_mode_answers_zero_and_the_client_stays_tunnelled() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
            assert not tunnel.forwarding
            assert "?0" in tunnel.quic_forwarding_reason
            inner = await tunnel.quic(timeout=10)
            assert await inner.request(PAYLOAD[:20_000], timeout=10) == PAYLOAD[:20_000]
            c = _proxied(env).counters
            assert c.forwarded_up_packets == c.forwarded_down_packets == 0
            assert c.up_packets > 10 and c.down_packets > 10
            inner.close()

    run(main())


def test_proxy_closing_a_mapping_mid_transfer_falls_back_to_the_tunnel() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
            inner = await tunnel.quic(timeout=10)
            await _forwarding_ready(tunnel, inner)
            proxied = _proxied(env)
            state = proxied.quic_proxy
            assert state is not None
            c = proxied.counters
            echo = inner.send(PAYLOAD)
            await wait_for(lambda: c.forwarded_up_packets > 20, what="forwarding")
            for cid in list(state.state.target_cids):
                state.close_target_cid(cid)  # CLOSE_TARGET_CID: the client must tunnel
            for cid in list(state.state.client_cids):
                state.close_client_cid(cid)
            async with asyncio.timeout(20):
                assert await echo == PAYLOAD  # the inner connection never noticed
            fwd = tunnel.quic_proxy
            assert fwd is not None and not fwd.target_vcids
            assert len(tunnel.client._proto.vcid_index) == 0
            relayed = c.up_packets
            assert await inner.request(b"after", timeout=10) == b"after"
            assert c.up_packets > relayed  # back in the tunnel
            assert fwd.state.counters.closed_by_proxy >= 2
            inner.close()

    run(main())


def test_forwarded_packets_from_another_source_never_match() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
            inner = await tunnel.quic(timeout=10)
            await _forwarding_ready(tunnel, inner)
            fwd = tunnel.quic_proxy
            assert fwd is not None
            vcid = fwd.target_vcids[inner.quic._peer_cid.cid]
            forwarded: list[bytes] = []
            send = env.proxy.forwarder._send

            def spy(rule: Any, packet: bytes) -> None:
                forwarded.append(packet)
                send(rule, packet)

            env.proxy.forwarder._send = spy
            marker = b"\x40" + vcid + b"not from the client" * 3
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                for _ in range(5):
                    other.sendto(marker, (LOOPBACK, env.proxy_port))
                # the same packet from the client's own 4-tuple is forwarded
                client._proto.send_forwarded(marker)
            await wait_for(lambda: len([p for p in forwarded if p.endswith(marker[9:])]) == 1,
                           what="the client's copy to be forwarded")
            await asyncio.sleep(0.1)
            assert len([p for p in forwarded if p.endswith(marker[9:])]) == 1
            assert await inner.request(b"still fine", timeout=10) == b"still fine"
            inner.close()

    run(main())


def test_registration_past_the_limit_resets_the_stream_with_h3_datagram_error() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True, max_connection_ids=2) as env, \
                env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            for i in range(3):  # sequence numbers 0, 1 and 2 > MAX_CONNECTION_IDS 1
                tunnel._send_capsule(w.RegisterClientCid(bytes([i]) * 8).encode())
            await wait_for(tunnel.closed.is_set, what="the stream reset")
            assert f"error {H3_DATAGRAM_ERROR:#x}" in tunnel.close_reason
            await wait_for(lambda: not env.proxy.tunnels, what="the proxy to close it")

    run(main())


@pytest.mark.parametrize("capsule", [w.AckClientCid(b"A" * 8, b"B" * 8),
                                     w.MaxConnectionIds(9), w.AckTargetCid(b"A" * 8, b"")])
def test_proxy_only_capsule_from_the_client_resets_the_stream(capsule: w.CidCapsule) -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            tunnel._send_capsule(capsule.encode())
            await wait_for(tunnel.closed.is_set, what="the stream reset")
            assert f"error {H3_DATAGRAM_ERROR:#x}" in tunnel.close_reason

    run(main())


def test_malformed_capsule_resets_the_stream() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            tunnel._send_capsule(bytes.fromhex("80ffe601 03 09 0102"))  # CID overruns
            await wait_for(tunnel.closed.is_set, what="the stream reset")
            assert f"error {H3_DATAGRAM_ERROR:#x}" in tunnel.close_reason

    run(main())


def test_client_resets_on_max_connection_ids_below_one() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            tunnel._stream_data(w.MaxConnectionIds(0).encode(), False)
            assert tunnel.closed.is_set() and "below 1" in tunnel.close_reason
            await wait_for(lambda: not env.proxy.tunnels, what="the proxy to see the reset")

    run(main())


def test_cid_capsules_without_negotiation_are_ignored() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port)  # no Proxy-QUIC-Forwarding
            tunnel._send_capsule(w.AckClientCid(b"A" * 8, b"B" * 8).encode())
            tunnel._send_capsule(w.RegisterClientCid(b"A" * 8).encode())
            tunnel.send(b"ping")
            assert await tunnel.recv(timeout=5) == b"ping"
            proxied = _proxied(env)
            assert proxied.quic_proxy is None
            assert proxied.counters.ignored_capsules == 2

    run(main())


def test_cid_awareness_without_forwarding_acks_without_vcids() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            tunnel._send_capsule(w.RegisterClientCid(b"A" * 8).encode())
            proxied = _proxied(env)
            await wait_for(lambda: proxied.quic_proxy is not None
                           and proxied.quic_proxy.capsules_received == 1, what="the capsule")
            assert proxied.quic_proxy is not None
            assert not proxied.quic_proxy.forwarding
            assert proxied.quic_proxy.state.client_cids  # acknowledged, no VCID
            assert len(env.proxy.forwarder) == 0

    run(main())


def test_client_aborts_when_the_proxy_picks_a_transform_it_did_not_offer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def rogue(headers: Any, *, enabled: bool) -> Negotiation:
        return Negotiation(True, True, "scramble-dt", [
            (w.FORWARDING_HEADER, b'?1; transform="scramble-dt"')])

    monkeypatch.setattr(proxy_mod, "proxy_negotiate", rogue)

    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            with pytest.raises(MasqueError, match="did not offer"):
                await client.open_udp(LOOPBACK, env.udp_port, quic_forwarding=True)
            await wait_for(lambda: not env.proxy.tunnels, what="the aborted request to close")

    run(main())


class RecordingTable:
    """A stand-in for a switch-backed ForwardingTable: records calls, answers asynchronously
    (as a controller round trip would), and can fail."""

    def __init__(self, fail: bool = False) -> None:
        self.installed: list[ForwardingRule] = []
        self.removed: list[ForwardingRule] = []
        self.fail = fail

    async def install(self, rule: ForwardingRule) -> None:
        await asyncio.sleep(0)
        self.installed.append(rule)
        if self.fail:
            raise RuntimeError("switch unreachable")

    def remove(self, rule: ForwardingRule) -> None:
        self.removed.append(rule)


@pytest.mark.parametrize("fail", [False, True])
def test_an_extra_forwarding_table_gets_every_rule_with_its_4_tuples(fail: bool) -> None:
    table = RecordingTable(fail)

    async def main() -> None:
        async with environment(quic_forwarding=True) as env:
            await env.proxy.close()  # restart it with the extra table
            env.proxy = MasqueProxy(ProxySettings(allow=["127.0.0.0/8"], quic_forwarding=True),
                                    forwarding_tables=[table])
            await env.proxy.start(LOOPBACK, 0)
            async with env.client() as client:
                tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
                inner = await tunnel.quic(timeout=10)
                await _forwarding_ready(tunnel, inner)
                assert await inner.request(b"x" * 5000, timeout=10) == b"x" * 5000
                proxied = _proxied(env)
                assert proxied.transport is not None
                proxy_side = proxied.transport.get_extra_info("sockname")[:2]
                client_addr = (LOOPBACK, client._proto._transport.get_extra_info("sockname")[1])
                await wait_for(lambda: len(table.installed) == len(env.proxy.forwarder),
                               what="the table to catch up")
                assert set(table.installed) == set(env.proxy.forwarder.rules())
                fwd = tunnel.quic_proxy
                assert fwd is not None
                target_cid = inner.quic._peer_cid.cid
                (up,) = [r for r in table.installed if r.direction == TO_TARGET
                         and r.new_dcid == target_cid]
                assert up.match == FourTuple(client_addr, (LOOPBACK, env.proxy_port))
                assert up.dcid == fwd.target_vcids[target_cid]
                assert up.out == FourTuple(proxy_side, (LOOPBACK, env.quic_port))
                assert len(up.dcid) == w.VCID_LENGTH
                downs = [r for r in table.installed if r.direction == TO_CLIENT]
                assert {r.dcid for r in downs} <= {c.cid for c in inner.quic._host_cids}
                for r in downs:
                    assert r.match == FourTuple((LOOPBACK, env.quic_port), proxy_side)
                    assert r.out == FourTuple((LOOPBACK, env.proxy_port), client_addr)
                    assert len(r.new_dcid) == w.VCID_LENGTH
                inner.close()
                tunnel.close()
                await wait_for(lambda: not env.proxy.tunnels, what="the tunnel to close")
                assert set(table.removed) == set(table.installed)

    run(main())


def test_rules_follow_the_client_to_a_new_validated_path() -> None:
    async def main() -> None:
        async with environment(quic_forwarding=True) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
            inner = await tunnel.quic(timeout=10)
            await _forwarding_ready(tunnel, inner)
            proxied = _proxied(env)
            old = proxied.quic_proxy.client if proxied.quic_proxy else None
            # a NAT rebinding: the client's outer connection continues from a new port
            proto = client._proto
            old_transport = proto._transport
            loop = asyncio.get_running_loop()
            await loop.create_datagram_endpoint(lambda: proto, family=socket.AF_INET6,
                                                local_addr=("::", 0))
            old_transport.close()
            new_port = proto._transport.get_extra_info("sockname")[1]
            assert await inner.request(PAYLOAD[:100_000], timeout=20) == PAYLOAD[:100_000]
            await wait_for(lambda: proxied.quic_proxy is not None
                           and proxied.quic_proxy.client == (LOOPBACK, new_port),
                           what="the rules to follow the validated path")
            assert old is not None and old[1] != new_port
            ups = [r for r in env.proxy.forwarder.rules() if r.direction == TO_TARGET]
            assert ups and all(r.match.src == (LOOPBACK, new_port) for r in ups)
            before = proxied.counters.forwarded_up_packets
            assert await inner.request(PAYLOAD[:100_000], timeout=20) == PAYLOAD[:100_000]
            assert proxied.counters.forwarded_up_packets > before + 20
            inner.close()

    run(main())


class SlowTable(RecordingTable):
    """A table that takes a while to install, as a switch behind its controller does."""

    async def install(self, rule: ForwardingRule) -> None:
        await asyncio.sleep(0.3)
        self.installed.append(rule)


def test_acknowledgements_wait_for_the_tables_to_install() -> None:
    """The client forwards once it has the ACK: the switch must have the rule by then, or
    its first packets would take the proxy host's software path."""
    table = SlowTable()

    async def main() -> None:
        async with environment(quic_forwarding=True) as env:
            await env.proxy.close()
            env.proxy = MasqueProxy(ProxySettings(allow=["127.0.0.0/8"], quic_forwarding=True),
                                    forwarding_tables=[table])
            await env.proxy.start(LOOPBACK, 0)
            async with env.client() as client:
                tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
                inner = await tunnel.quic(timeout=10)
                await _forwarding_ready(tunnel, inner)
                target_cid = inner.quic._peer_cid.cid
                assert [r for r in table.installed
                        if r.direction == TO_TARGET and r.new_dcid == target_cid]
                assert await inner.request(b"y" * 3000, timeout=10) == b"y" * 3000
                inner.close()
                tunnel.close()

    asyncio.run(main())


def test_the_initial_client_cid_is_registered_with_the_request() -> None:
    """The draft lets the initial REGISTER_CLIENT_CID precede the response: sent with the
    request, its ACK_CLIENT_VCID leaves with the inner Initial, so even a slow table (a
    switch behind its controller) has the target-to-client rule before the inner
    handshake has begun, a round trip before the target's first short-header packet."""
    table = SlowTable()

    async def main() -> None:
        async with environment(quic_forwarding=True) as env:
            await env.proxy.close()
            env.proxy = MasqueProxy(ProxySettings(allow=["127.0.0.0/8"], quic_forwarding=True),
                                    forwarding_tables=[table])
            await env.proxy.start(LOOPBACK, 0)
            async with env.client() as client:
                tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
                # no inner connection yet: the registration went with the request
                await wait_for(lambda: any(r.direction == TO_CLIENT for r in table.installed),
                               what="the early registration's rule in the slow table")
                (down,) = [r for r in table.installed if r.direction == TO_CLIENT]
                inner = await tunnel.quic(timeout=10)
                assert inner.quic.host_cid == down.dcid
                assert await inner.request(PAYLOAD[:50_000], timeout=10) == PAYLOAD[:50_000]
                proxied = _proxied(env)
                # the target's short headers never went through the tunnel
                assert proxied.counters.down_short_packets == 0
                assert proxied.counters.forwarded_down_packets > 20
                fwd = tunnel.quic_proxy
                assert fwd is not None and fwd.counters.rejected == []
                inner.close()
                tunnel.close()

    run(main())


def test_an_initial_cid_of_another_length_is_not_adopted() -> None:
    from aioquic.quic.configuration import QuicConfiguration

    from hostagent.masque.client_forwarding import adopt_initial_cid, early_client_cid

    cid, capsule = early_client_cid()
    assert capsule == w.RegisterClientCid(cid).encode()
    quic = proxy_mod.QuicConnection(configuration=QuicConfiguration(
        is_client=True, connection_id_length=4))
    assert not adopt_initial_cid(quic, cid)
    assert quic.host_cid != cid
    quic = proxy_mod.QuicConnection(configuration=QuicConfiguration(is_client=True))
    assert adopt_initial_cid(quic, cid)
    assert quic.host_cid == cid == quic._host_cids[0].cid


class SlowRemoveTable(RecordingTable):
    """A table whose removals take a while (a switch behind a busy controller)."""

    async def remove(self, rule: ForwardingRule) -> None:  # type: ignore[override]
        await asyncio.sleep(0.3)
        self.removed.append(rule)


def test_a_closing_proxy_waits_for_its_mappings_to_be_removed() -> None:
    """Else a switch keeps the mappings of a proxy that is gone (and a controller's
    per-client allowance stays used up)."""
    table = SlowRemoveTable()

    async def main() -> None:
        async with environment(quic_forwarding=True) as env:
            await env.proxy.close()
            env.proxy = MasqueProxy(ProxySettings(allow=["127.0.0.0/8"], quic_forwarding=True),
                                    forwarding_tables=[table])
            await env.proxy.start(LOOPBACK, 0)
            async with env.client() as client:
                tunnel = await client.open_udp(LOOPBACK, env.quic_port, quic_forwarding=True)
                inner = await tunnel.quic(timeout=10)
                await _forwarding_ready(tunnel, inner)
                assert await inner.request(b"z" * 3000, timeout=10) == b"z" * 3000
                await wait_for(lambda: len(table.installed) == len(env.proxy.forwarder),
                               what="the table to catch up")
                await env.proxy.close()  # with the tunnel still open
                assert table.installed and set(table.removed) == set(table.installed)
                assert not env.proxy.table_calls

    run(main())
