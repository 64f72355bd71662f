"""LLM workload: request mix, wire header, and the front-end/back-end over loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter

import pytest
from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.events import QuicEvent, StreamReset

from hostagent.llm import backend, frontend
from hostagent.llm.report import format_table, summarize
from hostagent.llm.wire import HEADER_SIZE, MalformedRequest, RequestHeader, request_bytes
from hostagent.llm.workload import CLASS_BY_NAME, CLASSES, request_mix


def free_port() -> int:
    """A port number free for both TCP and UDP on loopback."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def test_request_mix_is_seeded_and_uses_every_class() -> None:
    mix = request_mix(90, seed=1)
    assert mix == request_mix(90, seed=1)
    assert mix != request_mix(90, seed=2)
    counts = Counter(r.cls.name for r in mix)
    assert set(counts) == {c.name for c in CLASSES} and sum(counts.values()) == 90
    assert CLASS_BY_NAME["long"].size == 104858  # 102.4 KB


def test_header_round_trip_and_rejects() -> None:
    cls = CLASS_BY_NAME["free"]
    data = request_bytes(cls)
    assert len(data) == HEADER_SIZE + cls.size
    header = RequestHeader.decode(data)
    assert (header.cls, header.priority, header.deadline_ms) == (cls, 1, 2000)
    with pytest.raises(MalformedRequest, match="needs 12 bytes"):
        RequestHeader.decode(data[:5])
    with pytest.raises(MalformedRequest, match="version 9"):
        RequestHeader.decode(b"\x09" + data[1:])
    with pytest.raises(MalformedRequest, match="unknown class id 7"):
        RequestHeader.decode(data[:1] + b"\x07" + data[2:])


async def _with_backend(scheduler: str, body):  # type: ignore[no-untyped-def]
    port = free_port()
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(backend.serve_backend("127.0.0.1", port, scheduler,
                                                       ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        return await body(port)
    finally:
        stop.set()
        await server


@pytest.mark.parametrize("transport,scheduler", [
    ("quic", "edf"), ("quic", "rr"), ("quic", "pifo-abs"), ("tcp-n", "-"), ("tcp-1", "-"),
])
def test_every_request_is_answered_over_loopback(transport: str, scheduler: str) -> None:
    requests = request_mix(12, seed=3)
    sched = "aioquic-default" if scheduler == "-" else scheduler
    results = asyncio.run(_with_backend(sched, lambda port: frontend.run(
        transport, "127.0.0.1", port, requests, sched, timeout=30)))
    assert [r.index for r in results] == list(range(12))
    for request, result in zip(requests, results, strict=True):
        assert result.traffic_class == request.cls.name
        assert result.received == HEADER_SIZE + request.cls.size
        assert result.latency is not None and result.latency >= 0
        assert not result.reset
    summary = summarize(results)
    assert sum(row["requests"] for row in summary.values()) == 12
    assert "realtime" in format_table({f"{transport}/{scheduler}": summary})


def test_malformed_request_is_reset_and_counted() -> None:
    class Probe(QuicConnectionProtocol):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            self.reset = asyncio.Event()

        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, StreamReset):
                self.reset.set()

    async def body(port: int) -> None:
        config = backend.quic_configuration(is_client=True)
        config.verify_mode = ssl.CERT_NONE
        async with connect("127.0.0.1", port, configuration=config,
                           create_protocol=Probe) as client:
            sid = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(sid, b"\x09" + bytes(40), end_stream=True)
            client.transmit()
            await asyncio.wait_for(client.reset.wait(), 10)  # type: ignore[attr-defined]

    before = backend.BackendProtocol.malformed
    asyncio.run(_with_backend("fcfs", body))
    assert backend.BackendProtocol.malformed == before + 1


def test_frontend_cli_rejects_bad_address() -> None:
    with pytest.raises(SystemExit) as exc:
        frontend.main(["--connect", "nohostport"])
    assert exc.value.code == 2


def test_every_request_is_answered_through_a_masque_tunnel() -> None:
    """--transport masque: the front-end's QUIC connection inside CONNECT-UDP via mp-proxy."""
    from tests.masque.helpers import environment

    requests = request_mix(9, seed=2)

    async def body(port: int) -> list[frontend.RequestResult]:
        async with environment() as env:
            return await frontend.run("masque", "127.0.0.1", port, requests, "edf",
                                      timeout=30, proxy=("127.0.0.1", env.proxy_port))

    results = asyncio.run(_with_backend("edf", body))
    assert [r.index for r in results] == list(range(9))
    for request, result in zip(requests, results, strict=True):
        assert result.received == HEADER_SIZE + request.cls.size
        assert result.latency is not None and not result.reset


def test_frontend_cli_wants_a_proxy_for_masque_and_only_there() -> None:
    for argv in (["--connect", "127.0.0.1:1", "--transport", "masque"],
                 ["--connect", "127.0.0.1:1", "--fastpath"]):
        with pytest.raises(SystemExit) as exc:
            frontend.main(argv)
        assert exc.value.code == 2


def test_masque_fast_path_tags_each_class_and_the_proxy_ranks_them(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--transport masque --fastpath through a fake controller and a fake switch on loopback:
    the tunnel is granted, one rank per class DSCP is registered, each packet carries the
    DSCP of its most urgent open class, the proxy relays none, every request is answered."""
    from hostagent.masque.fastpath import FastPathSocket
    from tests.masque.test_fastpath_handoff import environment

    tags: list[int | None] = []
    send = FastPathSocket.send

    def recording(self: FastPathSocket, payload: bytes, dscp: int | None = None) -> None:
        tags.append(dscp)
        send(self, payload, dscp)

    monkeypatch.setattr(FastPathSocket, "send", recording)
    requests = request_mix(12, seed=3)
    report: dict[str, object] = {}

    async def body(port: int) -> tuple[list[frontend.RequestResult], dict[int, int], int]:
        async with environment() as env:
            env.switch.flows[8] = ("127.0.0.1", port)  # the flow the fake controller grants
            assert env.proxy.port is not None
            results = await frontend.run("masque", "127.0.0.1", port, requests, "ml",
                                         timeout=30, proxy=("127.0.0.1", env.proxy.port),
                                         fastpath=True, tunnel_report=report)
            ranks = {c.key.dscp: c.priority for n, c in env.controller.calls
                     if n == "RegisterStream"}
            return results, ranks, env.proxy.stats["up_packets"]

    results, ranks, relayed = asyncio.run(_with_backend("ml", body))
    assert ranks == {-1: 0, 46: 0, 26: 1, 10: 2}  # whole flow, then one rank per class
    for request, result in zip(requests, results, strict=True):
        assert result.received == HEADER_SIZE + request.cls.size, result
        assert result.latency is not None and not result.reset
    assert relayed == 0
    assert set(tags) <= set(frontend.CLASS_DSCP.values()) | {None}
    assert frontend.CLASS_DSCP[0] in tags and frontend.CLASS_DSCP[2] in tags  # burst, then long
    err = capsys.readouterr().err
    assert "on the fast path (flow 8 via" in err and "slow path" not in err
    assert report["granted"] and str(report["flow"]).startswith("flow 8 via")
    counters = report["counters"]
    assert isinstance(counters, dict) and counters["fp_sent"] > 0 and counters["via_proxy"] == 0


def test_masque_fast_path_refused_stays_on_the_slow_path(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without a controller the proxy relays the tunnel; the front-end says why, and every
    request is still answered."""
    from tests.masque.helpers import environment

    requests = request_mix(6, seed=4)

    async def body(port: int) -> list[frontend.RequestResult]:
        async with environment() as env:
            return await frontend.run("masque", "127.0.0.1", port, requests, "edf",
                                      timeout=30, proxy=("127.0.0.1", env.proxy_port),
                                      fastpath=True)

    results = asyncio.run(_with_backend("edf", body))
    assert all(r.latency is not None and not r.reset for r in results)
    err = capsys.readouterr().err
    assert "left the tunnel on the slow path (no controller configured)" in err


@pytest.mark.parametrize("argv,message", [
    (["--transport", "masque", "--proxy", "nohostport"], "--proxy"),
    (["--transport", "quic", "--proxy", "127.0.0.1:1"], "go with --transport masque"),
    (["--transport", "quic", "--tunnel-json", "x.json"], "go with --transport masque"),
    (["--transport", "masque"], "needs --proxy"),
])
def test_frontend_masque_argument_errors_are_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        frontend.main(["--connect", "127.0.0.1:1", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "error:" in err[-1] and message in err[-1]  # argparse: usage, then one line
