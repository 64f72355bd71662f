"""Paced UDP flows through CONNECT-UDP tunnels: who waits when a bottleneck is full.

Each flow opens its own tunnel (outer priority = the flow's priority, which the
proxy also registers as the tunnel's rank in the switch when it grants the fast
path) to the target's UDP echo, then sends SIZE-byte packets at RATE for the
given seconds. Every packet carries its flow, sequence number and send time; the
echo comes back through the same tunnel, so each packet's round-trip time is
measured on one clock and a lost packet is one that never came back.

Runs in the client's namespace (the MASQUE priority experiment and `make demo`
start it there) and prints one JSON document on stdout:

    python -m hostagent.masque.paced --proxy 10.0.2.10:4433 --target 10.0.3.10:4434 \\
        --flow high,0,0.4mbit,200 --flow bulk,10,6mbit,1200 --seconds 6 --fastpath
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from clikit import setup_logging
from clikit.args import parse_host_port
from hostagent.masque.client import MasqueClient, MasqueError, TunnelRefused, UdpTunnel
from hostagent.schedulers import StreamMeta
from netlab.linkemu import parse_rate

#: flow index, sequence number, send time (monotonic seconds)
STAMP = struct.Struct("!HId")
#: pacing tick: packets due are sent every TICK seconds
TICK = 0.002
#: seconds to wait for the last echoes after the sending ends
DRAIN = 1.0


@dataclass(frozen=True)
class FlowSpec:
    """One paced flow: its name, outer priority (0 first), rate in bits/s, packet size."""

    name: str
    priority: int
    rate_bps: int
    size: int

    @property
    def packets_per_second(self) -> float:
        """Packets per second at `rate_bps` (UDP payload bits)."""
        return self.rate_bps / (8 * self.size)


def parse_flow(text: str) -> FlowSpec:
    """``NAME,PRIORITY,RATE,SIZE`` -> FlowSpec; ValueError with what is wrong."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not parts[0]:
        raise ValueError(f"flow {text!r} is not NAME,PRIORITY,RATE,SIZE "
                         "(e.g. high,0,0.4mbit,200)")
    try:
        priority, size = int(parts[1]), int(parts[3])
    except ValueError:
        raise ValueError(f"flow {text!r}: PRIORITY and SIZE are integers") from None
    if priority < 0:
        raise ValueError(f"flow {text!r}: PRIORITY must be >= 0")
    if not STAMP.size <= size <= 1200:
        raise ValueError(f"flow {text!r}: SIZE must be {STAMP.size}..1200 bytes")
    rate = parse_rate(parts[2])
    if not rate:
        raise ValueError(f"flow {text!r}: RATE must be > 0 (e.g. 0.4mbit)")
    return FlowSpec(parts[0], priority, rate, size)


@dataclass
class FlowResult:
    """What one flow sent and got back."""

    name: str
    priority: int
    rate_bps: int
    size: int
    path: str = "slow path"  # "fast path" when the switch carries the tunnel
    error: str = ""
    sent: int = 0
    received: int = 0
    rtts_ms: list[float] = field(default_factory=list)

    @property
    def delivered(self) -> float:
        """Share of the packets sent whose echo came back."""
        return self.received / self.sent if self.sent else 0.0


class PacedFlow:
    """Sends one flow's packets through its tunnel and matches the echoes."""

    def __init__(self, index: int, spec: FlowSpec, tunnel: UdpTunnel) -> None:
        self.index = index
        self.spec = spec
        self.tunnel = tunnel
        self.result = FlowResult(spec.name, spec.priority, spec.rate_bps, spec.size,
                                 "fast path" if tunnel.on_fastpath else "slow path")
        self._padding = b"\0" * (spec.size - STAMP.size)
        tunnel.on_receive = self._echo

    def _echo(self, payload: bytes) -> None:
        if len(payload) < STAMP.size:
            return
        flow, _seq, sent_at = STAMP.unpack_from(payload)
        if flow == self.index:
            self.result.received += 1
            self.result.rtts_ms.append(1000 * (time.monotonic() - sent_at))

    def send_due(self, elapsed: float) -> None:
        """Send the packets due `elapsed` seconds after the start."""
        due = int(elapsed * self.spec.packets_per_second) + 1
        while self.result.sent < due:
            self.tunnel.send(STAMP.pack(self.index, self.result.sent, time.monotonic())
                             + self._padding)
            self.result.sent += 1


async def run_flows(proxy: tuple[str, int], target: tuple[str, int], flows: list[FlowSpec],
                    seconds: float, *, fastpath: bool = False, mode: str = "datagram",
                    timeout: float = 10.0) -> dict[str, Any]:
    """Open one tunnel per flow, pace them all for `seconds`, wait for the echoes."""
    results: list[FlowResult] = []
    async with MasqueClient(*proxy, connect_timeout=timeout) as client:
        paced: list[PacedFlow] = []
        for index, spec in enumerate(flows):
            try:
                tunnel = await client.open_udp(*target, mode=mode,
                                               meta=StreamMeta(priority=spec.priority),
                                               fastpath=fastpath, timeout=timeout)
            except (TunnelRefused, MasqueError, TimeoutError) as exc:
                results.append(FlowResult(spec.name, spec.priority, spec.rate_bps, spec.size,
                                          error=str(exc) or "timed out"))
                continue
            paced.append(PacedFlow(index, spec, tunnel))
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            for flow in paced:
                flow.send_due(elapsed)
            await asyncio.sleep(TICK)
        await asyncio.sleep(DRAIN)
        for flow in paced:
            flow.tunnel.close()
            results.append(flow.result)
    results.sort(key=lambda r: [f.name for f in flows].index(r.name))
    return {"seconds": seconds, "fastpath_asked": fastpath, "mode": mode,
            "flows": [asdict(r) for r in results]}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m hostagent.masque.paced", description=__doc__.split("\n\n")[0],
        epilog="example: --flow high,0,0.4mbit,200 --flow bulk,10,6mbit,1200")
    parser.add_argument("--proxy", required=True, metavar="HOST:PORT", help="mp-proxy")
    parser.add_argument("--target", required=True, metavar="HOST:PORT",
                        help="UDP echo target (mp-target --udp)")
    parser.add_argument("--flow", action="append", required=True, metavar="SPEC",
                        help="NAME,PRIORITY,RATE,SIZE (repeatable; priority 0 first; rate "
                        "e.g. 0.4mbit; SIZE 14..1200 bytes)")
    parser.add_argument("--seconds", type=float, default=6.0, help="sending time (6)")
    parser.add_argument("--fastpath", action="store_true",
                        help="ask the proxy for the switch fast path for every tunnel")
    parser.add_argument("--mode", choices=["datagram", "stream"], default="datagram",
                        help="how the slow path carries UDP (default datagram)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to connect and to open each tunnel (10)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run, print the JSON."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        proxy, target = parse_host_port(args.proxy), parse_host_port(args.target)
        flows = [parse_flow(f) for f in args.flow]
    except ValueError as exc:
        parser.error(str(exc))
    if len({f.name for f in flows}) != len(flows):
        parser.error("flow names must differ")
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")
    setup_logging(logging.WARNING, fmt="%(name)s: %(message)s")
    try:
        result = asyncio.run(run_flows(proxy, target, flows, args.seconds,
                                       fastpath=args.fastpath, mode=args.mode,
                                       timeout=args.timeout))
    except (MasqueError, OSError, TimeoutError) as exc:
        print(f"paced: {type(exc).__name__}: {exc or 'timed out'}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
