"""`mp-client`: opens CONNECT-UDP tunnels and runs an echo exchange through each, printing RTTs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time

from clikit import setup_logging
from clikit.args import parse_host_port
from hostagent import congestion
from hostagent.masque.client import MasqueClient, MasqueError, TunnelRefused, UdpTunnel
from hostagent.masque.proxy import MODES
from hostagent.masque.target import ECHO_ALPN
from hostagent.masque.wire import DEFAULT_TEMPLATE_PATH, TemplateMatcher, WireError
from hostagent.schedulers import SCHEDULERS, StreamMeta


def build_parser() -> argparse.ArgumentParser:
    """The command line of `mp-client`."""
    parser = argparse.ArgumentParser(
        prog="mp-client",
        description="CONNECT-UDP client: one outer HTTP/3 connection to the proxy, N tunnels "
        "over it, an inner QUIC connection through each (or plain UDP), with an outer and an "
        "inner stream scheduler (nested priorities). Runs an echo exchange against mp-target "
        "and prints the round-trip times.",
    )
    parser.add_argument("proxy", help="proxy HOST:PORT")
    parser.add_argument("--target", action="append", default=[], metavar="HOST:PORT",
                        help="target to tunnel to (repeatable; at least one)")
    parser.add_argument("--tunnels", type=int, default=1, metavar="N",
                        help="tunnels per target (default 1)")
    parser.add_argument("--protocol", choices=["quic", "udp"], default="quic",
                        help=f"inner QUIC connection (ALPN {ECHO_ALPN}) or plain UDP datagrams "
                        "(default quic)")
    parser.add_argument("--mode", choices=list(MODES), default="datagram",
                        help="datagram: HTTP Datagrams in QUIC DATAGRAM frames; stream: "
                        "DATAGRAM capsules on the request stream (default datagram)")
    parser.add_argument("--count", type=int, default=5, help="echo exchanges per tunnel")
    parser.add_argument("--size", type=int, default=1000, help="bytes per exchange")
    parser.add_argument("--outer-scheduler", default="rr", choices=list(SCHEDULERS),
                        help="scheduler of the outer connection's tunnel streams (default rr)")
    parser.add_argument("--inner-scheduler", default="rr", choices=list(SCHEDULERS),
                        help="scheduler of each inner QUIC connection (default rr)")
    parser.add_argument("--priority", type=int, default=0,
                        help="rank of the tunnels (outer StreamMeta priority; 0 first)")
    parser.add_argument("--fastpath", action="store_true",
                        help="ask the proxy for the switch fast path (masque-fastpath: ?1)")
    parser.add_argument("--quic-forwarding", action="store_true",
                        help="ask for forwarded mode of QUIC-aware proxying (draft-ietf-masque-"
                        "quic-proxy-06, identity transform) for the inner QUIC connections; "
                        "refused, a tunnel stays tunnelled (needs --protocol quic)")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE_PATH, metavar="PATH",
                        help=f"URI Template path of the proxy (default {DEFAULT_TEMPLATE_PATH})")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds for each step (connect, open, handshake, exchange)")
    congestion.add_argument(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


async def _exchange(tunnel: UdpTunnel, protocol: str, count: int, size: int,
                    inner_scheduler: str, timeout: float) -> list[float]:
    """`count` echo exchanges of `size` bytes; their round-trip times in seconds."""
    rtts = []
    if protocol == "udp":
        for i in range(count):
            payload = i.to_bytes(4, "big") + b"u" * max(0, size - 4)
            started = time.monotonic()
            tunnel.send(payload)
            while (await tunnel.recv(timeout)) != payload:
                pass
            rtts.append(time.monotonic() - started)
        return rtts
    inner = await tunnel.quic(scheduler=inner_scheduler, timeout=timeout)
    try:
        for i in range(count):
            payload = bytes([i % 256]) * size
            started = time.monotonic()
            answer = await inner.request(payload, StreamMeta(), timeout)
            if answer != payload:
                raise MasqueError("the echo differs from what was sent")
            rtts.append(time.monotonic() - started)
    finally:
        inner.close()
    return rtts


def _forwarded_summary(tunnel: UdpTunnel) -> str:
    """Forwarded and tunnelled packet counts of a tunnel in forwarded mode."""
    c = tunnel.counters()
    return (f"forwarded sent {c.get('fwd_sent', 0)} received {c.get('fwd_received', 0)}, "
            f"tunnelled sent {c['sent'] - c.get('fwd_sent', 0)} received {c['via_proxy']}")


async def run(args: argparse.Namespace, proxy: tuple[str, int],
              targets: list[tuple[str, int]]) -> int:
    """Open the tunnels, run the exchanges, print one line per tunnel; the exit code."""
    failures = 0
    async with MasqueClient(*proxy, scheduler=args.outer_scheduler,
                            template_path=args.template,
                            connect_timeout=args.timeout,
                            congestion_control=args.congestion_control) as client:
        settings = client.h3.received_settings or {}
        print(f"connected to {proxy[0]}:{proxy[1]}: extended CONNECT "
              f"{'yes' if client.h3.peer_extended_connect else 'no'}, HTTP Datagrams "
              f"{'yes' if client.h3.peer_datagrams else 'no'} (SETTINGS {settings})")
        jobs = []
        for host, port in targets:
            for _ in range(args.tunnels):
                jobs.append((host, port))

        async def one(host: str, port: int) -> None:
            nonlocal failures
            try:
                tunnel = await client.open_udp(host, port, mode=args.mode,
                                               meta=StreamMeta(priority=args.priority),
                                               fastpath=args.fastpath,
                                               quic_forwarding=args.quic_forwarding,
                                               timeout=args.timeout)
            except (TunnelRefused, MasqueError, TimeoutError) as exc:
                failures += 1
                print(f"{host}:{port}: {exc or 'timed out'}")
                return
            note = ""
            if tunnel.fastpath is not None:
                note = (f" fast path: the proxy left the tunnel on the slow path "
                        f"({tunnel.fastpath_reason})"
                        if tunnel.fastpath == "slow path" else f" fast path: {tunnel.fastpath}")
            try:
                rtts = await _exchange(tunnel, args.protocol, args.count, args.size,
                                       args.inner_scheduler, args.timeout)
            except (MasqueError, TimeoutError) as exc:
                failures += 1
                print(f"{host}:{port} tunnel #{tunnel.stream_id} {tunnel.mode}: failed: "
                      f"{exc or 'timed out'}{note}")
                return
            finally:
                tunnel.close()
            if args.quic_forwarding:
                note += (f" forwarded mode: {_forwarded_summary(tunnel)}" if tunnel.forwarding
                         else " forwarded mode refused, tunnelled "
                         f"({tunnel.quic_forwarding_reason})")
            fp = tunnel.fastpath_counters
            fp_counts = (f" (shims sent {fp.sent}, received {fp.received}, malformed "
                         f"{fp.malformed}; via the proxy {tunnel.counters()['via_proxy']})"
                         if tunnel.fastpath not in (None, "slow path") else "")
            ms = [1000 * r for r in rtts]
            print(f"{host}:{port} tunnel #{tunnel.stream_id} {tunnel.mode} {args.protocol}: "
                  f"{len(ms)} x {args.size} B, RTT ms min {min(ms):.1f} median "
                  f"{statistics.median(ms):.1f} max {max(ms):.1f} "
                  f"[{' '.join(f'{v:.1f}' for v in ms)}]{note}{fp_counts}")

        await asyncio.gather(*(one(h, p) for h, p in jobs))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.target:
        parser.error("give at least one --target HOST:PORT")
    try:
        proxy = parse_host_port(args.proxy)
        targets = [parse_host_port(t) for t in args.target]
        TemplateMatcher(args.template)
    except (ValueError, WireError) as exc:
        parser.error(str(exc))
    if args.quic_forwarding and args.protocol != "quic":
        parser.error("--quic-forwarding needs --protocol quic (it forwards QUIC packets)")
    if args.tunnels < 1 or args.count < 1 or args.size < 4:
        parser.error("--tunnels and --count must be >= 1, --size >= 4")
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return asyncio.run(run(args, proxy, targets))
    except (MasqueError, TimeoutError, OSError) as exc:
        print(f"mp-client: {exc or 'timed out'}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
