"""BMv2 and the built-in target on the same seeded packet stream: same outputs, same
counters. Runs where both targets exist (the built-in one always does; BMv2 where built)."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator

import finsy as fy
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from bmv2 import launcher, toolchain
from controller.p4runtime import BlockingP4Runtime
from hostagent import shim
from p4src.pipeline import NUM_QUEUES, SchedMode
from tests.dataplane import plan
from tests.dataplane.layers import MpShim
from tests.dataplane.ptf import VethPorts

pytestmark = [pytest.mark.root, pytest.mark.bmv2, pytest.mark.slow]

PACKETS = int(os.environ.get("MP_DIFF_PACKETS", "3000"))
CHUNK = 10  # packets in flight at once (with 40, BMv2 lost a few frames at random)
FLOWS = [(0x1000 + i, 50000 + i, 40000 + i, 443) for i in range(8)]



def packet_stream(seed: int = 11) -> Iterator[tuple[int, bytes]]:
    """(ingress port, frame): routed UDP, fast-path traffic both ways, misses, spoofs
    and malformed frames, with random DSCP tags (ranks)."""
    rng = random.Random(seed)
    for _ in range(PACKETS):
        kind = rng.choices(["route", "decap", "encap", "miss", "spoof", "bad"],
                           [30, 25, 20, 5, 5, 15])[0]
        dscp = rng.randrange(64)
        payload = Raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        flow_id, cport, pport, tport = rng.choice(FLOWS)
        if kind == "route":
            frame = (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                     IP(src=plan.CLIENT, dst=rng.choice([plan.TARGET, plan.OTHER, plan.PROXY]),
                        tos=dscp << 2, ttl=rng.choice([1, 2, 64])) /
                     UDP(sport=rng.randrange(1, 65536), dport=rng.randrange(1, 65536)) / payload)
            yield 1, bytes(frame)
        elif kind in ("decap", "miss", "spoof"):
            fid = flow_id if kind != "miss" else rng.randrange(1 << 32)
            sport = cport if kind != "spoof" else cport + 1
            frame = (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                     IP(src=plan.CLIENT, dst=plan.FASTPATH_ADDR, tos=dscp << 2) /
                     UDP(sport=sport, dport=shim.FASTPATH_PORT) /
                     MpShim(version=rng.choice([1, 1, 1, 2]), flow_id=fid) / payload)
            yield 1, bytes(frame)
        elif kind == "encap":
            frame = (Ether(src=plan.HOST_MAC[3], dst=plan.SWITCH_MAC[3]) /
                     IP(src=plan.TARGET, dst=plan.PROXY, tos=dscp << 2) /
                     UDP(sport=tport, dport=pport) / payload)
            # sent on port 1 too: SP-PIFO's state depends on the order packets are
            # processed, which is only defined within one ingress port
            yield 1, bytes(frame)
        else:
            good = bytes(Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                         IP(src=plan.CLIENT, dst=plan.TARGET) / UDP() / payload)
            choice = rng.randrange(5)
            if choice == 0:
                yield 1, good[:rng.randrange(14, 42)]  # truncated
            elif choice == 1:
                yield 1, bytes(Ether(src=plan.HOST_MAC[1]) / ARP(pdst=plan.TARGET))
            elif choice == 2:
                yield 1, bytes(Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                               IP(src=plan.CLIENT, dst=plan.TARGET, options=b"\x01\x01\x01\x00")
                               / UDP() / payload)
            elif choice == 3:
                corrupt = bytearray(good)
                corrupt[24] ^= 0xFF  # IPv4 checksum
                yield 1, bytes(corrupt)
            else:
                yield 1, bytes(rng.randrange(256) for _ in range(rng.randrange(14, 80)))


def entries() -> list:
    ranks = [plan.rank_by_dscp(d, (d * 997) % 65536) for d in range(64)]
    flows = [e for f in FLOWS for e in plan.flow(*f)]
    return (plan.routes() + plan.fastpath_base() + flows + ranks +
            [plan.sched_mode(SchedMode.SPPIFO)])


def counters(p4rt: BlockingP4Runtime) -> dict:
    read = {}
    for name in ("drops", "fastpath_misses", "queue_enqueues"):
        read[name] = sorted((e.index, e.data.packet_count, e.data.byte_count)
                            for e in p4rt.read([fy.P4CounterEntry(name)]))
    for name in ("decap_counter", "encap_counter"):
        read[name] = sorted((str(e.table_entry.match), e.data.packet_count, e.data.byte_count)
                            for e in p4rt.read([fy.P4DirectCounterEntry(name)]))
    return read


@pytest.fixture
def both_targets() -> Iterator[dict[str, tuple[VethPorts, BlockingP4Runtime]]]:
    if toolchain.find("simple_switch_grpc") is None:
        pytest.skip("the differential test needs BMv2's simple_switch_grpc")
    running = {}
    stack = []
    try:
        for n, target in enumerate(("bmv2", "soft")):
            ports = VethPorts(4, prefix=f"mp{os.getpid() % 10000}d{n}")
            ports.create()
            stack.append(ports.destroy)
            config = launcher.SwitchConfig(ports={p: ports.switch_if(p) for p in ports.ports},
                                           grpc_addr=launcher.free_grpc_addr())
            proc = launcher.SwitchProcess(target, config)
            proc.start()
            stack.append(proc.stop)
            p4rt = BlockingP4Runtime(config.grpc_addr).open()
            stack.append(p4rt.close)
            p4rt.set_pipeline()
            p4rt.write(entries())
            running[target] = (ports, p4rt)
        yield running
    finally:
        for undo in reversed(stack):
            undo()


def test_same_stream_same_outputs_and_counters(both_targets) -> None:  # type: ignore[no-untyped-def]
    stream = list(packet_stream())
    outputs: dict[str, Counter] = {t: Counter() for t in both_targets}
    for start in range(0, len(stream), CHUNK):
        chunk = stream[start:start + CHUNK]
        for target, (ports, _) in both_targets.items():
            for port, frame in chunk:
                ports.send(port, frame)
            for port, frames in ports.receive(0.3).items():
                outputs[target].update((port, f) for f in frames)
    assert sum(outputs["bmv2"].values()) > PACKETS // 2, "most packets are forwarded"
    missing = outputs["bmv2"] - outputs["soft"]
    extra = outputs["soft"] - outputs["bmv2"]
    shown = [f"port {p}: {Ether(f).summary()} len {len(f)}" for p, f in
             list(missing)[:5] + list(extra)[:5]]
    assert not missing and not extra, (f"{sum(missing.values())} frames only from BMv2, "
                                       f"{sum(extra.values())} only from the soft target: "
                                       + "; ".join(shown))
    got = {t: counters(p4rt) for t, (_, p4rt) in both_targets.items()}
    differ = {k: (got["bmv2"][k], got["soft"][k]) for k in got["bmv2"]
              if got["bmv2"][k] != got["soft"][k]}
    assert not differ, f"counters differ (bmv2, soft): {differ}"
    assert sum(c for _, c, _ in got["soft"]["queue_enqueues"]) > 0
    assert len(got["soft"]["queue_enqueues"]) == NUM_QUEUES
