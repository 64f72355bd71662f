"""The LLM front-end: issues a request mix and records when each answer completes.

Transports:
- ``quic``: every request is a bidirectional stream of one QUIC connection, sent
  by the chosen stream scheduler with the class's priority and deadline.
- ``tcp-n``: TLS over TCP, one connection per request.
- ``tcp-1``: TLS over TCP, one connection; requests follow each other in order.
- ``masque``: the QUIC connection of ``quic`` runs inside a CONNECT-UDP tunnel
  through a MASQUE proxy (``--proxy``), relayed by the proxy or, with
  ``--fastpath``, carried by the P4 switch; there each packet carries the DSCP
  of its most urgent class (CLASS_DSCP), which the proxy registers as a rank.

All requests are issued at once (a burst, as in the seed thesis's experiment)
unless an interval is given. A request completes when its whole answer has
arrived; it is on time when that happened within its class's deadline.

    python -m hostagent.llm.frontend --connect 10.0.0.2:4433 --scheduler edf --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
from dataclasses import asdict, dataclass

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset

from clikit.args import parse_host_port
from hostagent.llm.backend import quic_configuration
from hostagent.llm.wire import HEADER_SIZE, request_bytes
from hostagent.llm.workload import Request, request_mix
from hostagent.schedulers import (
    SCHEDULERS,
    ScheduledQuicConnection,
    StreamMeta,
    make_scheduler,
    scheduled_protocol,
)

TRANSPORTS = ("quic", "tcp-n", "tcp-1", "masque")
#: class priority -> the DSCP its packets carry on the switch fast path (EF, AF31, AF11)
CLASS_DSCP = {0: 46, 1: 26, 2: 10}


@dataclass
class RequestResult:
    """What happened to one request."""

    index: int
    traffic_class: str
    deadline_s: float
    issued_at: float
    done_at: float | None = None  # whole answer received
    received: int = 0
    reset: bool = False  # abandoned (deadline passed at either end)

    @property
    def latency(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.issued_at

    @property
    def on_time(self) -> bool:
        latency = self.latency
        return latency is not None and latency <= self.deadline_s

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "latency": self.latency, "on_time": self.on_time}


def _new_result(request: Request, issued_at: float) -> RequestResult:
    return RequestResult(request.index, request.cls.name, request.cls.deadline_s, issued_at)


class FrontendProtocol(QuicConnectionProtocol):
    """Collects the answers of the request streams it opened."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.results: dict[int, RequestResult] = {}
        self.outstanding = 0
        self.all_done = asyncio.Event()

    def issue(self, request: Request, now: float) -> None:
        conn: ScheduledQuicConnection = self._quic  # type: ignore[assignment]
        cls = request.cls
        sid = conn.open_stream(StreamMeta(priority=cls.priority, deadline=now + cls.deadline_s,
                                          traffic_class=cls.name))
        self.results[sid] = _new_result(request, now)
        self.outstanding += 1
        conn.send_stream_data(sid, request_bytes(cls), end_stream=True)

    def _finish(self, result: RequestResult) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            result = self.results.get(event.stream_id)
            if result is None or result.done_at is not None or result.reset:
                return
            result.received += len(event.data)
            if event.end_stream:
                result.done_at = self._loop.time()
                self._finish(result)
        elif isinstance(event, StreamReset):
            result = self.results.get(event.stream_id)
            if result is not None and result.done_at is None and not result.reset:
                result.reset = True
                self._finish(result)
        elif isinstance(event, ConnectionTerminated):
            self.all_done.set()


async def run_quic(host: str, port: int, requests: list[Request], scheduler: str,
                   interval: float = 0.0, timeout: float = 60.0) -> list[RequestResult]:
    """Send `requests` over one QUIC connection scheduled by `scheduler`."""
    make_scheduler(scheduler)
    config = quic_configuration(is_client=True)
    config.verify_mode = ssl.CERT_NONE  # the back-end's certificate is throw-away
    async with connect(host, port, configuration=config,
                       create_protocol=scheduled_protocol(
                           FrontendProtocol, lambda: make_scheduler(scheduler))) as client:
        proto: FrontendProtocol = client  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        for request in requests:
            proto.issue(request, loop.time())
            proto.transmit()
            if interval:
                await asyncio.sleep(interval)
        if requests:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proto.all_done.wait(), timeout)
        # pending requests, in issue order, whatever their stream ids
        return sorted(proto.results.values(), key=lambda r: r.index)


async def run_masque(proxy: tuple[str, int], host: str, port: int, requests: list[Request],
                     scheduler: str, interval: float = 0.0, timeout: float = 60.0,
                     fastpath: bool = False,
                     tunnel_report: dict[str, object] | None = None) -> list[RequestResult]:
    """`run_quic`, with the QUIC connection inside a CONNECT-UDP tunnel through `proxy`.

    `tunnel_report`, when given, is filled with what the tunnel got: whether the fast
    path was asked for and granted, its flow or why not, the DSCP map and its counters.
    """
    from hostagent.masque.client import MasqueClient

    make_scheduler(scheduler)  # a bad name fails before the tunnel is opened
    loop = asyncio.get_running_loop()
    results: list[RequestResult] = []
    async with MasqueClient(*proxy, connect_timeout=timeout) as client:
        tunnel = await client.open_udp(host, port, fastpath=fastpath, timeout=timeout,
                                       fastpath_dscp=CLASS_DSCP if fastpath else None)
        if fastpath and not tunnel.on_fastpath:
            print(f"frontend: the proxy left the tunnel on the slow path "
                  f"({tunnel.fastpath_reason or 'no reason given'})", file=sys.stderr)
        # the back-end's QUIC settings (ALPN, flow control), as for transport quic
        inner = await tunnel.quic(scheduler=scheduler, timeout=timeout,
                                  configuration=quic_configuration(is_client=True))
        pending = []
        for request in requests:
            now, cls = loop.time(), request.cls
            result = _new_result(request, now)
            answer = inner.send(request_bytes(cls), StreamMeta(
                priority=cls.priority, deadline=now + cls.deadline_s, traffic_class=cls.name))

            def finished(fut: asyncio.Future[bytes], result: RequestResult = result) -> None:
                if fut.cancelled() or fut.exception() is not None:
                    result.reset = True
                else:
                    result.done_at, result.received = loop.time(), len(fut.result())

            answer.add_done_callback(finished)
            pending.append(answer)
            results.append(result)
            if interval:
                await asyncio.sleep(interval)
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        for answer in pending:
            answer.cancel()
        c = tunnel.counters()
        if tunnel_report is not None:
            tunnel_report.update(
                fastpath_requested=fastpath, granted=tunnel.on_fastpath,
                flow=tunnel.fastpath if tunnel.on_fastpath else None,
                reason=tunnel.fastpath_reason,
                dscp={str(p): d for p, d in CLASS_DSCP.items()} if fastpath else {},
                counters=c)
        if tunnel.on_fastpath:
            print(f"frontend: tunnel {host}:{port} on the fast path ({tunnel.fastpath}, DSCP "
                  f"per class {CLASS_DSCP}): shims sent {c['fp_sent']}, received "
                  f"{c['fp_received']}; via the proxy {c['via_proxy']}", file=sys.stderr)
        inner.close()
        tunnel.close()
    return results


def _tls_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _read_answer(reader: asyncio.StreamReader, result: RequestResult, size: int) -> None:
    loop = asyncio.get_running_loop()
    while result.received < size:
        chunk = await reader.read(min(65536, size - result.received))
        if not chunk:
            return
        result.received += len(chunk)
    result.done_at = loop.time()


async def run_tcp_per_request(host: str, port: int, requests: list[Request],
                              interval: float = 0.0, timeout: float = 60.0
                              ) -> list[RequestResult]:
    """TLS over TCP, one connection per request (handshakes included in the latency)."""
    loop = asyncio.get_running_loop()
    results = [_new_result(r, 0.0) for r in requests]

    async def one(request: Request, result: RequestResult) -> None:
        result.issued_at = loop.time()
        reader, writer = await asyncio.open_connection(host, port, ssl=_tls_client())
        try:
            writer.write(request_bytes(request.cls))
            await writer.drain()
            await _read_answer(reader, result, HEADER_SIZE + request.cls.size)
        finally:
            writer.close()

    tasks = []
    for request, result in zip(requests, results, strict=True):
        tasks.append(asyncio.create_task(one(request, result)))
        if interval:
            await asyncio.sleep(interval)
    await asyncio.wait(tasks, timeout=timeout) if tasks else None
    for task in tasks:
        task.cancel()
    return results


async def run_tcp_single(host: str, port: int, requests: list[Request],
                         interval: float = 0.0, timeout: float = 60.0) -> list[RequestResult]:
    """TLS over TCP, one connection: answers come back in request order."""
    loop = asyncio.get_running_loop()
    results = [_new_result(r, 0.0) for r in requests]
    reader, writer = await asyncio.open_connection(host, port, ssl=_tls_client())

    async def send_all() -> None:
        for request, result in zip(requests, results, strict=True):
            result.issued_at = loop.time()
            writer.write(request_bytes(request.cls))
            if interval:
                await writer.drain()
                await asyncio.sleep(interval)
        await writer.drain()

    async def read_all() -> None:
        for request, result in zip(requests, results, strict=True):
            await _read_answer(reader, result, HEADER_SIZE + request.cls.size)

    try:
        await asyncio.wait_for(asyncio.gather(send_all(), read_all()), timeout)
    except TimeoutError:
        pass
    finally:
        writer.close()
    return results


async def run(transport: str, host: str, port: int, requests: list[Request],
              scheduler: str = "aioquic-default", interval: float = 0.0,
              timeout: float = 60.0, proxy: tuple[str, int] | None = None,
              fastpath: bool = False,
              tunnel_report: dict[str, object] | None = None) -> list[RequestResult]:
    """Run the mix over one of TRANSPORTS (``masque`` needs `proxy`; see `run_masque`
    for `tunnel_report`)."""
    if transport == "masque":
        if proxy is None:
            raise ValueError("transport masque needs a proxy")
        return await run_masque(proxy, host, port, requests, scheduler, interval, timeout,
                                fastpath, tunnel_report)
    if transport == "quic":
        return await run_quic(host, port, requests, scheduler, interval, timeout)
    if transport == "tcp-n":
        return await run_tcp_per_request(host, port, requests, interval, timeout)
    if transport == "tcp-1":
        return await run_tcp_single(host, port, requests, interval, timeout)
    raise ValueError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORTS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hostagent.llm.frontend",
        description="LLM front-end: issue the seed thesis's request mix (real-time, free-tier, "
        "long) to a back-end and report when each answer completed.")
    parser.add_argument("--connect", required=True, metavar="HOST:PORT")
    parser.add_argument("--transport", default="quic", choices=TRANSPORTS)
    parser.add_argument("--scheduler", default="aioquic-default", choices=list(SCHEDULERS),
                        help="QUIC stream scheduler (transports quic and masque)")
    parser.add_argument("--proxy", metavar="HOST:PORT",
                        help="MASQUE proxy (mp-proxy) for --transport masque")
    parser.add_argument("--fastpath", action="store_true",
                        help="--transport masque: ask the proxy for the switch fast path")
    parser.add_argument("--requests", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between requests (default 0: one burst)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", metavar="FILE", help="write per-request results ('-': stdout)")
    parser.add_argument("--tunnel-json", metavar="FILE",
                        help="--transport masque: write what the tunnel got (fast path "
                        "granted, flow or reason, shim counters) as JSON")
    args = parser.parse_args(argv)
    try:
        host, port = parse_host_port(args.connect)
    except ValueError as exc:
        parser.error(str(exc))
    if args.requests < 0:
        parser.error("--requests must be >= 0")
    proxy = None
    if args.transport == "masque":
        if not args.proxy:
            parser.error("--transport masque needs --proxy HOST:PORT")
        try:
            proxy = parse_host_port(args.proxy)
        except ValueError as exc:
            parser.error(f"--proxy: {exc}")
    elif args.proxy or args.fastpath or args.tunnel_json:
        parser.error("--proxy, --fastpath and --tunnel-json go with --transport masque")
    report: dict[str, object] = {}
    results = asyncio.run(run(args.transport, host, port, request_mix(args.requests, args.seed),
                              args.scheduler, args.interval, args.timeout, proxy,
                              args.fastpath, report))
    if args.tunnel_json:
        with open(args.tunnel_json, "w") as f:
            json.dump(report, f)
    from hostagent.llm.report import format_table, summarize
    if args.json:
        text = json.dumps([r.to_dict() for r in results])
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    if args.json != "-":
        print(format_table({f"{args.transport}/{args.scheduler}": summarize(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
