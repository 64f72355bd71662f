"""20,000 random and truncated frames on a port: the target keeps running, and every
frame is either forwarded or counted as a drop."""

from __future__ import annotations

import random

import finsy as fy
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.dataplane import plan
from tests.dataplane.ptf import VethPorts

pytestmark = [pytest.mark.root, pytest.mark.slow]

FRAMES = 20_000
CHUNK = 100


def garbage(rng: random.Random) -> bytes:
    """Random bytes, or a valid IPv4/UDP frame cut short or with flipped bytes."""
    if rng.random() < 0.5:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(14, 120)))
    good = bytearray(bytes(Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                           IP(src=plan.CLIENT, dst=plan.TARGET) / UDP(dport=4434) /
                           Raw(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))))
    if rng.random() < 0.5:
        return bytes(good[:rng.randrange(14, len(good))])
    for _ in range(rng.randrange(1, 4)):
        good[rng.randrange(14, len(good))] = rng.randrange(256)
    return bytes(good)


def test_random_frames_leave_the_target_running_and_are_accounted(p4rt,  # type: ignore[no-untyped-def]
                                                                  ports: VethPorts) -> None:
    p4rt.write(plan.routes() + plan.fastpath_base())
    rng = random.Random(5)
    forwarded = 0
    for start in range(0, FRAMES, CHUNK):
        for _ in range(min(CHUNK, FRAMES - start)):
            ports.send(1, garbage(rng))
        forwarded += sum(len(v) for v in ports.receive(0.05).values())
    forwarded += sum(len(v) for v in ports.receive(0.5).values())
    drops = sum(e.data.packet_count for e in p4rt.read([fy.P4CounterEntry("drops")]))
    assert drops > FRAMES // 2
    assert drops + forwarded == FRAMES, f"{FRAMES - drops - forwarded} frames unaccounted for"
    probe = (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
             IP(src=plan.CLIENT, dst=plan.TARGET) / UDP(sport=1, dport=2))
    ports.send(1, probe)
    assert len(ports.receive(1.0)[3]) == 1, "still forwarding"
