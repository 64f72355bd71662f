"""The fast-path hand-off (issue 7): the proxy asks the controller's northbound API for a
flow, the client sends the tunnel's packets in the shim.

In-process tests: a fake northbound servicer (grpc.aio on loopback) and, for the
granted case, a fake switch in Python that does what the P4 program's decap/encap
do (strip the shim and send from the proxy port to the target; wrap the answers).
The end-to-end test with a real switch and controller is
tests/masque/test_fastpath_e2e.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from controller.proto import northbound_pb2 as nb
from controller.proto import northbound_pb2_grpc as nb_grpc
from hostagent import shim
from hostagent.masque.fastpath import (
    ControllerFastPath,
    FastPathDenied,
    parse_dscp_map,
    parse_source,
)
from hostagent.masque.proxy import (
    FASTPATH_REASON_HEADER,
    FASTPATH_STATUS_HEADER,
    MasqueProxy,
    ProxySettings,
)
from hostagent.masque.target import EchoTargets
from hostagent.schedulers import StreamMeta
from tests.masque.helpers import LOOPBACK, connect_udp_headers, raw_request, run, wait_for


class FakeController(nb_grpc.ControllerServicer):
    """Records every call; grants flows (fast path at `switch_port`) or refuses them."""

    def __init__(self, switch_port: int, refuse: str | None = None) -> None:
        self.switch_port = switch_port
        self.refuse = refuse  # a grpc.StatusCode name, or None to grant
        self.calls: list[tuple[str, Any]] = []
        self.tokens: list[str] = []
        self.next_flow = 7

    def _seen(self, name: str, request: Any, context: Any) -> None:
        self.calls.append((name, request))
        self.tokens.append(dict(context.invocation_metadata()).get("authorization", ""))

    async def OpenFlow(self, request: nb.OpenFlowRequest, context: Any) -> nb.Flow:
        self._seen("OpenFlow", request, context)
        if self.refuse:
            await context.abort(getattr(grpc.StatusCode, self.refuse),
                                "client address 127.0.0.1 is not proxy's address")
        self.next_flow += 1
        return nb.Flow(flow_id=self.next_flow, client_addr=request.client_addr,
                       client_port=request.client_port, target_addr=request.target_addr,
                       target_port=request.target_port, fastpath_addr=LOOPBACK,
                       fastpath_port=self.switch_port, proxy_port=40000 + self.next_flow,
                       client="proxy")

    async def CloseFlow(self, request: nb.FlowRef, context: Any) -> nb.Empty:
        self._seen("CloseFlow", request, context)
        return nb.Empty()

    async def RegisterStream(self, request: nb.Stream, context: Any) -> nb.Stream:
        self._seen("RegisterStream", request, context)
        return nb.Stream(key=request.key, rank=1024 * request.priority, client="proxy")

    async def RemoveStream(self, request: nb.StreamKey, context: Any) -> nb.Empty:
        self._seen("RemoveStream", request, context)
        return nb.Empty()

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeSwitch(asyncio.DatagramProtocol):
    """The P4 fast path in miniature: shims in -> payload from a 'proxy port' socket to the
    target; the target's answers -> shims back to the client's source."""

    def __init__(self) -> None:
        self.flows: dict[int, tuple[str, int]] = {}  # flow id -> target
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None
        self.decap = self.encap = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        header, payload = shim.unwrap(data)
        target = self.flows.get(header.flow_id)
        if target is None or self.upstream is None:
            return
        self.client = addr
        self.decap += 1
        self.upstream.sendto(payload, target)

    def from_target(self, data: bytes, flow_id: int) -> None:
        if self.transport is not None and self.client is not None:
            self.encap += 1
            self.transport.sendto(shim.wrap(flow_id, data), self.client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, switch: FakeSwitch) -> None:
        self.switch = switch

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for flow_id, target in self.switch.flows.items():
            if target == addr:
                self.switch.from_target(data, flow_id)


@dataclass
class Env:
    proxy: MasqueProxy
    targets: EchoTargets
    controller: FakeController
    switch: FakeSwitch
    hook: ControllerFastPath
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self) -> Any:
        from hostagent.masque.client import MasqueClient
        assert self.proxy.port is not None
        return MasqueClient(LOOPBACK, self.proxy.port)


@contextlib.asynccontextmanager
async def environment(refuse: str | None = None, controller_up: bool = True
                      ) -> AsyncIterator[Env]:
    """Proxy with a ControllerFastPath, echo targets, a fake controller and a fake switch."""
    loop = asyncio.get_running_loop()
    switch = FakeSwitch()
    await loop.create_datagram_endpoint(lambda: switch, local_addr=(LOOPBACK, 0))
    assert switch.transport is not None
    switch_port = switch.transport.get_extra_info("sockname")[1]
    upstream, _ = await loop.create_datagram_endpoint(lambda: _Upstream(switch),
                                                      local_addr=(LOOPBACK, 0))
    switch.upstream = upstream  # type: ignore[assignment]
    controller = FakeController(switch_port, refuse)
    server = grpc.aio.server()
    nb_grpc.add_ControllerServicer_to_server(controller, server)
    nb_port = server.add_insecure_port(f"{LOOPBACK}:0")
    if controller_up:
        await server.start()
    hook = ControllerFastPath(f"{LOOPBACK}:{nb_port}", "proxy-token", timeout=2.0)
    proxy = MasqueProxy(ProxySettings(allow=["127.0.0.0/8"]), fastpath=hook)
    targets = EchoTargets()
    try:
        await proxy.start(LOOPBACK, 0)
        await targets.start_udp(LOOPBACK, 0)
        await targets.start_quic(LOOPBACK, 0)
        yield Env(proxy, targets, controller, switch, hook)
    finally:
        await proxy.close()
        targets.close()
        switch.transport.close()
        upstream.close()
        await server.stop(None)
        await asyncio.sleep(0.05)


def test_header_parsers() -> None:
    assert parse_source(b"10.0.1.10:50000") == ("10.0.1.10", 50000)
    assert parse_dscp_map(b"46=0, 10=3") == {46: 0, 10: 3}
    for bad in (b"10.0.1.10", b"host:1", b"10.0.1.10:0", b"[::1]:5"):
        with pytest.raises(FastPathDenied):
            parse_source(bad)
    for bad in (b"64=1", b"x=1", b"10"):
        with pytest.raises(FastPathDenied):
            parse_dscp_map(bad)


def test_granted_flow_carries_the_inner_connection_and_is_closed_with_the_tunnel(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")

    async def main() -> None:
        async with environment() as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.targets.quic_port or 0, fastpath=True,
                                           meta=StreamMeta(priority=2),
                                           fastpath_dscp={0: 46, 3: 10})
            assert tunnel.on_fastpath and tunnel.fastpath_flow == 8
            assert tunnel.fastpath == f"flow 8 via {LOOPBACK}:{env.controller.switch_port}"
            [(_, opened)] = [c for c in env.controller.calls if c[0] == "OpenFlow"]
            source = tunnel._fastpath.source  # type: ignore[union-attr]
            assert (opened.client_addr, opened.client_port) == source
            assert (opened.target_addr, opened.target_port) == (LOOPBACK,
                                                                env.targets.quic_port)
            assert set(env.controller.tokens) == {"Bearer proxy-token"}
            ranks = {(c.key.src_addr, c.key.dst_addr, c.key.src_port, c.key.dst_port,
                      c.key.dscp): c.priority
                     for n, c in env.controller.calls if n == "RegisterStream"}
            key = (LOOPBACK, LOOPBACK, source[1], env.controller.switch_port)
            assert ranks == {(*key, -1): 2, (*key, 46): 0, (*key, 10): 3}
            env.switch.flows[8] = (LOOPBACK, env.targets.quic_port or 0)

            inner = await tunnel.quic(timeout=10)
            answers = await asyncio.gather(*(inner.request(bytes([i]) * 3000,
                                                           StreamMeta(priority=i), timeout=10)
                                             for i in range(4)))
            assert answers == [bytes([i]) * 3000 for i in range(4)]
            [ptunnel] = list(env.proxy.tunnels)
            assert ptunnel.fastpath_flow == 8
            assert (ptunnel.counters.up_packets, ptunnel.counters.down_packets) == (0, 0), (
                "the proxy relayed none of the inner packets")
            loop = asyncio.get_running_loop()
            settle = loop.time() + 2  # a shim may still be in flight on loopback
            while loop.time() < settle and (
                    tunnel.counters()["fp_sent"] != env.switch.decap
                    or tunnel.counters()["fp_received"] != env.switch.encap):
                await asyncio.sleep(0.02)
            counters = tunnel.counters()
            assert counters["fp_sent"] == env.switch.decap > 0
            assert counters["fp_received"] == env.switch.encap > 0
            assert counters["via_proxy"] == 0 and counters["fp_malformed"] == 0
            # malformed shims and other flows' shims are dropped and counted
            assert env.switch.transport is not None and env.switch.client is not None
            env.switch.transport.sendto(b"\x07bad", env.switch.client)
            env.switch.transport.sendto(shim.wrap(99, b"x"), env.switch.client)
            await wait_for(lambda: tunnel.fastpath_counters.malformed == 1
                           and tunnel.fastpath_counters.other_flow == 1, what="drops")
            inner.close()
            tunnel.close()
            await wait_for(lambda: "CloseFlow" in env.controller.names(), what="CloseFlow")
            names = env.controller.names()
            assert names.count("RemoveStream") == 3
            assert names.index("CloseFlow") > max(i for i, n in enumerate(names)
                                                  if n == "RemoveStream")
            [(_, ref)] = [c for c in env.controller.calls if c[0] == "CloseFlow"]
            assert ref.flow_id == 8 and env.hook.granted == {}

    run(main())
    assert "fast path granted: flow 8" in caplog.text
    assert "fast-path flow 8 closed" in caplog.text


def test_flow_closed_when_the_client_goes_away() -> None:
    async def main() -> None:
        async with environment() as env:
            client = env.client()
            await client.connect()
            tunnel = await client.open_udp(LOOPBACK, env.targets.udp_port or 0, fastpath=True)
            assert tunnel.on_fastpath
            client._proto._quic.close()  # the outer connection goes, tunnels unclosed
            client._proto.transmit()
            await wait_for(lambda: "CloseFlow" in env.controller.names(), what="CloseFlow")
            await client.close()

    run(main())


def test_controller_refusal_leaves_the_tunnel_on_the_slow_path(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")

    async def main() -> None:
        async with environment(refuse="PERMISSION_DENIED") as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.targets.udp_port or 0, fastpath=True)
            assert not tunnel.on_fastpath and tunnel.fastpath == "slow path"
            assert tunnel.fastpath_reason.startswith("controller refused: permission_denied")
            tunnel.send(b"still relayed")
            assert await tunnel.recv(timeout=5) == b"still relayed"
            assert env.hook.stats["refused"] == 1 and env.hook.granted == {}
            tunnel.close()
            await asyncio.sleep(0.1)
            assert "CloseFlow" not in env.controller.names()

    run(main())
    assert "fast path refused, tunnel stays on the slow path: controller refused" in caplog.text


def test_unreachable_controller_leaves_the_tunnel_on_the_slow_path() -> None:
    async def main() -> None:
        async with environment(controller_up=False) as env, env.client() as client:
            tunnel = await client.open_udp(LOOPBACK, env.targets.udp_port or 0, fastpath=True)
            assert tunnel.fastpath == "slow path" and "unreachable" in tunnel.fastpath_reason
            tunnel.send(b"slow")
            assert await tunnel.recv(timeout=5) == b"slow"
            assert env.hook.stats["unreachable"] == 1

    run(main())


def test_source_address_other_than_the_connection_is_refused() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            path = f"/.well-known/masque/udp/{LOOPBACK}/{env.targets.udp_port}/"
            headers = connect_udp_headers(path, masque_fastpath=b"?1",
                                          masque_fastpath_source=b"10.9.9.9:5000")
            answer = await raw_request(client, headers)
            assert answer[b":status"] == b"200"
            assert answer[FASTPATH_STATUS_HEADER] == b"slow-path"
            assert b"is not the address of the client's connection" in answer[
                FASTPATH_REASON_HEADER]
            missing = await raw_request(client, connect_udp_headers(path, masque_fastpath=b"?1"))
            assert b"no masque-fastpath-source" in missing[FASTPATH_REASON_HEADER]
            assert env.controller.calls == [], "the controller is never asked"

    run(main())


def test_the_same_flow_is_not_shared_by_two_tunnels() -> None:
    async def main() -> None:
        async with environment() as env, env.client() as client:
            env.controller.next_flow = 20
            first = await client.open_udp(LOOPBACK, env.targets.udp_port or 0, fastpath=True)
            env.controller.next_flow = 20  # the controller answers the same flow again
            source = first._fastpath.source  # type: ignore[union-attr]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((LOOPBACK, 0))
                path = f"/.well-known/masque/udp/{LOOPBACK}/{env.targets.udp_port}/"
                answer = await raw_request(client, connect_udp_headers(
                    path, masque_fastpath=b"?1",
                    masque_fastpath_source=f"{source[0]}:{source[1]}".encode()))
            assert b"already used by another tunnel" in answer[FASTPATH_REASON_HEADER]
            assert first.on_fastpath and list(env.hook.granted) == [21]

    run(main())
