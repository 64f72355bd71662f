"""Packets per second of Engine.process on the MASQUE/PIFO program (not a test: timing
goals are never asserted). Run: .venv/bin/python -m tests.softswitch.bench_engine

Frames of 64 and 1200 bytes through fast-path decapsulation (the switch's hot path),
encapsulation and plain routing, with the tables a running proxy would hold."""

from __future__ import annotations

import argparse
import ipaddress
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from bmv2.softswitch.engine import Engine, MatchKey
from hostagent import shim
from p4src import pipeline
from tests.dataplane import plan
from tests.dataplane.layers import MpShim

ING = "MpIngress."
FP = ING + "fast_path."
FLOW, CLIENT_PORT, PROXY_PORT, TARGET_PORT = 0x01020304, 50000, 40001, 443


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def configured_engine(flows: int) -> Engine:
    """The program with routes, the fast-path endpoint and `flows` flows installed."""
    e = Engine(pipeline.BMV2_JSON.read_bytes())
    for port, subnet in plan.SUBNET.items():
        net, length = subnet.split("/")
        e.add_entry(ING + "forwarding.ipv4_lpm", [MatchKey("lpm", ip(net), int(length))],
                    ING + "forwarding.route",
                    [port, mac(plan.SWITCH_MAC[port]), mac(plan.HOST_MAC[port])])
    e.add_entry(FP + "fastpath_local", [MatchKey("exact", ip(plan.FASTPATH_ADDR))],
                FP + "fastpath_here", [])
    for i in range(flows):
        flow, cport, pport = FLOW + i, (CLIENT_PORT + i) % 65536, (PROXY_PORT + i) % 65536
        e.add_entry(FP + "fastpath_decap", [MatchKey("exact", v) for v in (
            ip(plan.CLIENT), cport, flow)], FP + "decap",
            [ip(plan.PROXY), pport, ip(plan.TARGET), TARGET_PORT])
        e.add_entry(FP + "fastpath_flow_ids", [MatchKey("exact", flow)], FP + "flow_known", [])
        e.add_entry(FP + "fastpath_encap", [MatchKey("exact", v) for v in (
            ip(plan.TARGET), TARGET_PORT, pport)], FP + "encap",
            [flow, ip(plan.FASTPATH_ADDR), ip(plan.CLIENT), cport])
    return e


def frames(size: int) -> dict[str, bytes]:
    def pad(head: Ether) -> bytes:
        raw = bytes(head)
        return bytes(head / Raw(b"\x00" * (size - len(raw))))

    eth = Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1])
    return {
        "decap": pad(eth / IP(src=plan.CLIENT, dst=plan.FASTPATH_ADDR) /
                     UDP(sport=CLIENT_PORT, dport=shim.FASTPATH_PORT) / MpShim(flow_id=FLOW)),
        "encap": pad(Ether(src=plan.HOST_MAC[3], dst=plan.SWITCH_MAC[3]) /
                     IP(src=plan.TARGET, dst=plan.PROXY) /
                     UDP(sport=TARGET_PORT, dport=PROXY_PORT)),
        "route": pad(eth / IP(src=plan.CLIENT, dst=plan.TARGET) / UDP(sport=1, dport=2)),
    }


def rate(engine: Engine, frame: bytes, port: int, seconds: float) -> float:
    process = engine.process
    assert len(process(frame, port)) == 1
    n, batch = 0, 2000
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            process(frame, port)
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--flows", type=int, default=1000, help="fast-path flows installed")
    args = parser.parse_args()
    engine = configured_engine(args.flows)
    print(f"Engine.process, {args.flows} flows installed, {args.seconds:g} s per cell")
    print(f"{'frame':>6} {'path':>6} {'packets/s':>10} {'us/packet':>10}")
    for size in (64, 1200):
        for path, frame in frames(size).items():
            port = 3 if path == "encap" else 1
            pps = rate(engine, frame, port, args.seconds)
            print(f"{size:>6} {path:>6} {pps:>10,.0f} {1e6 / pps:>10.2f}")


if __name__ == "__main__":
    main()
