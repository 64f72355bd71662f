"""A paced UDP sender and a receiver that measures one-way delay and loss per flow.

Sender and receiver run in namespaces of the same machine, so their clocks are the
same clock (CLOCK_MONOTONIC is system-wide): each datagram carries its send time.

    python -m topologies.udp_probe send --to 10.0.3.10:9000 --rate 1mbit --size 1000 \\
        --seconds 5 --tos 184 --flow 1
    python -m topologies.udp_probe receive --listen 0.0.0.0:9000 --seconds 7   # JSON out
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

from hostagent.netaddr import parse_host_port
from topologies.linkemu import parse_rate

HEADER = struct.Struct("!IId")  # flow, sequence, send time (monotonic)


def send(to: tuple[str, int], rate_bps: int, size: int, seconds: float, tos: int,
         flow: int) -> int:
    """Paced sending for `seconds`; the number of datagrams sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    gap = size * 8 / rate_bps
    pad = bytes(max(0, size - HEADER.size))
    start = time.monotonic()
    seq = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            return seq
        due = start + seq * gap
        if due > now:
            time.sleep(due - now)
        sock.sendto(HEADER.pack(flow, seq, time.monotonic()) + pad, to)
        seq += 1


def receive(listen: tuple[str, int], seconds: float) -> dict[int, dict[str, object]]:
    """Per flow: datagrams received, highest sequence, delays in ms (sorted)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(listen)
    sock.settimeout(0.2)
    flows: dict[int, dict[str, list[float] | int]] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            continue
        if len(data) < HEADER.size:
            continue
        flow, seq, sent = HEADER.unpack_from(data)
        f = flows.setdefault(flow, {"received": 0, "max_seq": -1, "delays_ms": []})
        f["received"] += 1  # type: ignore[operator]
        f["max_seq"] = max(f["max_seq"], seq)  # type: ignore[type-var]
        f["delays_ms"].append(1000 * (time.monotonic() - sent))  # type: ignore[union-attr]
    return {k: {**v, "delays_ms": sorted(v["delays_ms"])} for k, v in flows.items()}  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topologies.udp_probe",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True, metavar="HOST:PORT")
    s.add_argument("--rate", default="1mbit")
    s.add_argument("--size", type=int, default=1000)
    s.add_argument("--seconds", type=float, default=5.0)
    s.add_argument("--tos", type=int, default=0, help="IPv4 TOS byte (DSCP << 2)")
    s.add_argument("--flow", type=int, default=0)
    r = sub.add_parser("receive")
    r.add_argument("--listen", required=True, metavar="HOST:PORT")
    r.add_argument("--seconds", type=float, default=7.0)
    args = parser.parse_args(argv)
    try:
        if args.mode == "send":
            rate = parse_rate(args.rate)
            if not rate:
                parser.error("--rate must be a positive rate")
            sent = send(parse_host_port(args.to), rate, args.size, args.seconds, args.tos,
                        args.flow)
            print(json.dumps({"flow": args.flow, "sent": sent}))
        else:
            print(json.dumps(receive(parse_host_port(args.listen), args.seconds)))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
