"""The MASQUE/PIFO program (p4src/build/masque_pifo.json) through Engine.process with
scapy packets: the scenarios of tests/dataplane without a switch, sockets or root."""

from __future__ import annotations

import ipaddress
import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from bmv2.softswitch.engine import Engine, MatchKey, Output
from hostagent import shim
from p4src import pipeline
from p4src.pipeline import CPU_PORT, NUM_QUEUES, DropReason, MissCounter, SchedMode
from schedmodels.sppifo import SpPifoBounds
from tests.dataplane import plan
from tests.dataplane.layers import MpShim

if not pipeline.BMV2_JSON.exists():
    pytest.skip(f"{pipeline.BMV2_JSON} missing: run `make p4`", allow_module_level=True)

ING = "MpIngress."
LPM = ING + "forwarding.ipv4_lpm"
DROPS = ING + "drops"
MISSES = ING + "fast_path.fastpath_misses"
ENQUEUES = ING + "scheduling.queue_enqueues"
BOUNDS = ING + "scheduling.sppifo_bounds"
FP = ING + "fast_path."
FLOW, CLIENT_PORT, PROXY_PORT, TARGET_PORT = 0x01020304, 50000, 40001, 443


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)
INNER = b"\xc3" + bytes(range(64))

_PROGRAM = pipeline.BMV2_JSON.read_bytes()


def exact(*values: int) -> list[MatchKey]:
    return [MatchKey("exact", v) for v in values]


@pytest.fixture
def engine() -> Engine:
    e = Engine(_PROGRAM)
    for port, subnet in plan.SUBNET.items():
        net, length = subnet.split("/")
        e.add_entry(LPM, [MatchKey("lpm", ip(net), int(length))], ING + "forwarding.route",
                    [port, mac(plan.SWITCH_MAC[port]), mac(plan.HOST_MAC[port])])
    return e


def install_fast_path(e: Engine, miss_to_cpu: bool = False) -> None:
    e.add_entry(FP + "fastpath_local", exact(ip(plan.FASTPATH_ADDR)), FP + "fastpath_here",
                [])
    if miss_to_cpu:
        e.set_default(FP + "fastpath_miss", FP + "to_cpu", [])
    else:
        e.set_default(FP + "fastpath_miss", FP + "to_slow_path", [2, mac(plan.HOST_MAC[2])])
    e.add_entry(FP + "fastpath_decap", exact(ip(plan.CLIENT), CLIENT_PORT, FLOW),
                FP + "decap", [ip(plan.PROXY), PROXY_PORT, ip(plan.TARGET), TARGET_PORT])
    e.add_entry(FP + "fastpath_flow_ids", exact(FLOW), FP + "flow_known", [])
    e.add_entry(FP + "fastpath_encap", exact(ip(plan.TARGET), TARGET_PORT, PROXY_PORT),
                FP + "encap", [FLOW, ip(plan.FASTPATH_ADDR), ip(plan.CLIENT),
                               CLIENT_PORT])


def drops(e: Engine, reason: DropReason) -> int:
    return e.counter_read(DROPS, int(reason))[0]


def one(outputs: list[Output]) -> Output:
    assert len(outputs) == 1, outputs
    return outputs[0]


# -- routing --------------------------------------------------------------------------------------
def udp_from_client(dst: str = plan.TARGET, ttl: int = 64, payload: bytes = b"x" * 32,
                    **ip_fields: object) -> Ether:
    return (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=plan.CLIENT, dst=dst, ttl=ttl, **ip_fields) /
            UDP(sport=5000, dport=6000) / Raw(payload))


def routed(frame: Ether, port: int) -> bytes:
    out = Ether(bytes(frame))
    out.src, out.dst = plan.SWITCH_MAC[port], plan.HOST_MAC[port]
    out[IP].ttl -= 1
    del out[IP].chksum
    return bytes(out)


def test_routes_with_mac_rewrite_ttl_decrement_and_new_ipv4_checksum(engine: Engine) -> None:
    sent = udp_from_client(payload=b"checksum" * 10)
    out = one(engine.process(bytes(sent), 1))
    assert (out.port, out.priority) == (3, 0)
    assert out.frame == routed(sent, 3)
    got = Ether(out.frame)
    assert got[IP].ttl == 63
    assert got[IP].chksum == IP(bytes(got[IP]))[IP].chksum != Ether(bytes(sent))[IP].chksum
    assert got[UDP].chksum == Ether(bytes(sent))[UDP].chksum  # routing keeps it


@pytest.mark.parametrize("name,frame,reason", [
    ("ttl 1", udp_from_client(ttl=1), DropReason.TTL_EXPIRED),
    ("bad checksum", udp_from_client(chksum=0x1234), DropReason.IPV4_CHECKSUM),
    ("ip options", udp_from_client(options=b"\x01\x01\x01\x00"), DropReason.IPV4_OPTIONS),
    ("arp", Ether(src=plan.HOST_MAC[1], dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=plan.TARGET),
     DropReason.NOT_IPV4),
    ("no route", udp_from_client(dst="192.0.2.1"), DropReason.NO_ROUTE),
    ("truncated ipv4", Ether(bytes(udp_from_client())[:24]), DropReason.PARSER_ERROR),
])
def test_unprocessable_packets_are_dropped_and_counted_by_reason(engine: Engine, name: str,
                                                                 frame: Ether,
                                                                 reason: DropReason) -> None:
    assert engine.process(bytes(frame), 1) == [], name
    assert drops(engine, reason) == 1, name
    assert all(drops(engine, r) == 0 for r in DropReason if r != reason), name
    assert engine.counter_read(DROPS, int(reason))[1] == len(bytes(frame))


def test_packet_out_leaves_on_the_port_the_controller_names(engine: Engine) -> None:
    frame = bytes(udp_from_client())
    header = ((4 << 7) | 0).to_bytes(2, "big")  # packet_out: egress_port (9 bits), _pad (7)
    out = one(engine.process(header + frame, CPU_PORT))
    assert (out.port, out.priority, out.frame) == (4, 7, frame)
    assert engine.counter_read(ENQUEUES, 7) == (0, 0)  # exit: scheduling did not run


# -- the fast path --------------------------------------------------------------------------------
def shim_from_client(flow_id: int = FLOW, sport: int = CLIENT_PORT, src: str = plan.CLIENT,
                     version: int = shim.SHIM_VERSION, payload: bytes = INNER) -> Ether:
    return (Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
            IP(src=src, dst=plan.FASTPATH_ADDR, ttl=64) /
            UDP(sport=sport, dport=shim.FASTPATH_PORT) /
            MpShim(version=version, flow_id=flow_id) / Raw(payload))


def decapsulated(sent: Ether) -> bytes:
    return bytes(Ether(src=plan.SWITCH_MAC[3], dst=plan.HOST_MAC[3]) /
                 IP(src=plan.PROXY, dst=plan.TARGET, ttl=63, id=sent[IP].id) /
                 UDP(sport=PROXY_PORT, dport=TARGET_PORT, chksum=0) / Raw(INNER))


def from_target(payload: bytes = INNER) -> Ether:
    return (Ether(src=plan.HOST_MAC[3], dst=plan.SWITCH_MAC[3]) /
            IP(src=plan.TARGET, dst=plan.PROXY, ttl=64) /
            UDP(sport=TARGET_PORT, dport=PROXY_PORT) / Raw(payload))


def encapsulated(sent: Ether, payload: bytes = INNER) -> bytes:
    return bytes(Ether(src=plan.SWITCH_MAC[1], dst=plan.HOST_MAC[1]) /
                 IP(src=plan.FASTPATH_ADDR, dst=plan.CLIENT, ttl=63, id=sent[IP].id) /
                 UDP(sport=shim.FASTPATH_PORT, dport=CLIENT_PORT, chksum=0) /
                 MpShim(flow_id=FLOW) / Raw(payload))


def test_decapsulation_strips_the_shim_and_rewrites_to_the_target(engine: Engine) -> None:
    install_fast_path(engine)
    sent = shim_from_client()
    out = one(engine.process(bytes(sent), 1))
    assert out.port == 3
    assert out.frame == decapsulated(sent)
    ip = Ether(out.frame)[IP]
    assert ip.len == len(bytes(sent)) - 14 - 8
    assert ip.chksum == IP(bytes(ip))[IP].chksum


def test_encapsulation_adds_the_shim_and_rewrites_to_the_client(engine: Engine) -> None:
    install_fast_path(engine)
    sent = from_target()
    out = one(engine.process(bytes(sent), 3))
    assert out.port == 1
    assert out.frame == encapsulated(sent)
    got = Ether(out.frame)
    assert shim.unwrap(bytes(got[UDP].payload)) == (shim.Shim(FLOW), INNER)


def test_round_trip_counts_both_directions(engine: Engine) -> None:
    install_fast_path(engine)
    for _ in range(3):
        assert one(engine.process(bytes(shim_from_client()), 1)).port == 3
    answer = from_target(b"answer" * 20)
    assert one(engine.process(bytes(answer), 3)).port == 1
    [decap] = engine.entries(FP + "fastpath_decap")
    [encap] = engine.entries(FP + "fastpath_encap")
    assert (decap.packets, decap.bytes) == (3, 3 * len(shim_from_client()))
    assert (encap.packets, encap.bytes) == (1, len(answer))


def test_known_flow_from_another_source_is_dropped_as_spoofed(engine: Engine) -> None:
    install_fast_path(engine)
    assert engine.process(bytes(shim_from_client(sport=CLIENT_PORT + 1)), 1) == []
    assert engine.process(bytes(shim_from_client(src="10.0.1.66")), 1) == []
    assert drops(engine, DropReason.SPOOFED_FLOW) == 2


def test_unknown_flow_goes_to_the_slow_path(engine: Engine) -> None:
    install_fast_path(engine)
    sent = shim_from_client(flow_id=0x0BADF00D)
    out = one(engine.process(bytes(sent), 1))
    to_proxy = Ether(bytes(sent))
    to_proxy.dst = plan.HOST_MAC[2]
    assert (out.port, out.frame) == (2, bytes(to_proxy))
    assert engine.counter_read(MISSES, int(MissCounter.TO_SLOW_PATH))[0] == 1


def test_unknown_flow_goes_to_the_controller_with_a_packet_in_header(engine: Engine) -> None:
    install_fast_path(engine, miss_to_cpu=True)
    sent = bytes(shim_from_client(flow_id=0x0BADF00D))
    out = one(engine.process(sent, 1))
    assert out.port == CPU_PORT
    header = int.from_bytes(out.frame[:3], "big")  # ingress_port:9 _pad:7 reason:8
    assert (header >> 15, (header >> 8) & 0x7F, header & 0xFF) == (1, 0, 1)
    assert out.frame[3:] == sent
    assert engine.counter_read(MISSES, int(MissCounter.TO_CPU))[0] == 1


def test_shim_to_another_address_is_transit_traffic(engine: Engine) -> None:
    install_fast_path(engine)
    sent = shim_from_client()
    sent[IP].dst = plan.OTHER
    sent = Ether(bytes(sent))
    out = one(engine.process(bytes(sent), 1))
    assert (out.port, out.frame) == (4, routed(sent, 4))


def test_bad_version_and_truncated_shims_are_dropped(engine: Engine) -> None:
    install_fast_path(engine)
    assert engine.process(bytes(shim_from_client(version=2)), 1) == []
    truncated = bytes(shim_from_client(payload=b""))[:-4]  # 4 of the shim's 8 bytes
    assert engine.process(truncated, 1) == []
    assert drops(engine, DropReason.SHIM_VERSION) == 1
    assert drops(engine, DropReason.PARSER_ERROR) == 1


# -- scheduling -----------------------------------------------------------------------------------
def tagged(dscp: int) -> bytes:
    return bytes(Ether(src=plan.HOST_MAC[1], dst=plan.SWITCH_MAC[1]) /
                 IP(src=plan.CLIENT, dst=plan.TARGET, tos=dscp << 2) /
                 UDP(sport=5000, dport=6000) / Raw(b"r" * 16))


def set_mode(e: Engine, mode: SchedMode, burst_pct: int = 10, queue_depth: int = 64) -> None:
    e.set_default(ING + "scheduling.sched_mode", ING + "scheduling.set_mode",
                  [int(mode), burst_pct, queue_depth])


def send_ranks(e: Engine, ranks: list[int]) -> list[int]:
    """One packet per rank (DSCP d carries rank d's value); the priorities they leave with."""
    distinct = sorted(set(ranks))
    dscp_of = {rank: i for i, rank in enumerate(distinct)}
    for rank, dscp in dscp_of.items():
        e.add_entry(ING + "ranking.flow_rank",
                    [MatchKey("ternary", 0, 0)] * 4 + [MatchKey("ternary", dscp, 0x3F)],
                    ING + "ranking.set_rank", [rank], priority=10)
    return [one(e.process(tagged(dscp_of[r]), 1)).priority for r in ranks]


def queue_counts(e: Engine) -> list[int]:
    return [e.counter_read(ENQUEUES, q)[0] for q in range(NUM_QUEUES)]


def test_fifo_puts_everything_in_one_queue(engine: Engine) -> None:
    set_mode(engine, SchedMode.FIFO)
    assert send_ranks(engine, [5, 500, 50]) == [0, 0, 0]
    assert queue_counts(engine) == [3, 0, 0, 0, 0, 0, 0, 0]


def test_strict_maps_rank_ranges_to_queues(engine: Engine) -> None:
    set_mode(engine, SchedMode.STRICT)
    for lo, hi, q in [(0, 99, 7), (100, 199, 6), (200, 999, 1)]:
        engine.add_entry(ING + "scheduling.rank_to_queue", [MatchKey("range", lo, hi)],
                         ING + "scheduling.set_queue", [q], priority=1)
    assert send_ranks(engine, [10, 150, 150, 300, 5000]) == [7, 6, 6, 1, 0]
    assert queue_counts(engine) == [1, 1, 0, 0, 0, 0, 2, 1]


def test_default_rank_applies_to_unmatched_flows(engine: Engine) -> None:
    set_mode(engine, SchedMode.SPPIFO)
    engine.set_default(ING + "ranking.flow_rank", ING + "ranking.set_rank", [777])
    one(engine.process(tagged(0), 1))
    assert engine.register_read(BOUNDS, NUM_QUEUES - 1) == 777


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_sppifo_bounds_match_the_reference_after_a_rank_sequence(engine: Engine,
                                                                 seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.randrange(0, 65536) for _ in range(40)]
    ranks = [rng.choice(values) for _ in range(120)]
    set_mode(engine, SchedMode.SPPIFO)
    priorities = send_ranks(engine, ranks)
    reference = SpPifoBounds(queues=NUM_QUEUES)
    expected_priorities = [reference.bmv2_priority(reference.enqueue(r)) for r in ranks]
    assert [engine.register_read(BOUNDS, i) for i in range(NUM_QUEUES)] == reference.bounds
    assert priorities == expected_priorities
    counts = [0] * NUM_QUEUES
    for prio in expected_priorities:
        counts[prio] += 1
    assert queue_counts(engine) == counts


def test_egress_runs_when_the_caller_dequeues(engine: Engine) -> None:
    """`ingress` stops where the traffic manager holds the packet, `egress` finishes it:
    AIFO's occupancy estimate (added in ingress, taken off in egress) counts the packets
    between the two, as in simple_switch, where egress runs at dequeue."""
    set_mode(engine, SchedMode.AIFO, burst_pct=0, queue_depth=4)
    held = [engine.ingress(tagged(0), 1) for _ in range(5)]
    assert [q is not None for q in held] == [True, True, True, True, False]
    assert all(q.port == 3 and q.priority == 0 for q in held if q is not None)
    assert drops(engine, DropReason.QUEUE_FULL) == 1
    assert engine.register_read("queue_occupancy", 0) == 4
    first = held[0]
    assert first is not None
    assert Ether(one(engine.egress(first)).frame)[IP].ttl == 63
    assert engine.register_read("queue_occupancy", 0) == 3
    assert engine.ingress(tagged(0), 1) is not None  # room again
    assert engine.process(tagged(0), 1) == []  # full again: ingress drops it
    assert drops(engine, DropReason.QUEUE_FULL) == 2
    second = held[1]
    assert second is not None
    one(engine.egress(second))
    one(engine.process(tagged(0), 1))  # the whole pipeline at once: counted and taken off
    assert engine.register_read("queue_occupancy", 0) == 3


def test_reset_state_forgets_entries_counters_and_registers(engine: Engine) -> None:
    install_fast_path(engine)
    set_mode(engine, SchedMode.SPPIFO)
    one(engine.process(bytes(shim_from_client()), 1))
    engine.process(bytes(udp_from_client(ttl=1)), 1)
    engine.reset_state()
    assert engine.entries(LPM) == [] and engine.entries(FP + "fastpath_decap") == []
    assert drops(engine, DropReason.TTL_EXPIRED) == 0
    assert all(engine.register_read(BOUNDS, i) == 0 for i in range(NUM_QUEUES))
    assert engine.get_default(ING + "scheduling.sched_mode") == (ING + "scheduling.set_mode",
                                                                 [int(SchedMode.FIFO), 10, 64])
    assert engine.process(bytes(udp_from_client()), 1) == []  # no route any more
    assert drops(engine, DropReason.NO_ROUTE) == 1


def test_specs_describe_the_program_for_the_control_plane(engine: Engine) -> None:
    decap = engine.tables[FP + "fastpath_decap"]
    assert [(k.name, k.kind, k.bitwidth) for k in decap.keys] == [
        ("client_addr", "exact", 32), ("client_port", "exact", 16), ("flow_id", "exact", 32)]
    assert decap.actions == [FP + "decap", "NoAction"]
    assert (decap.default_action, decap.size) == ("NoAction", 65536)
    assert decap.direct_counter == FP + "decap_counter" and not decap.needs_priority
    assert engine.tables[ING + "ranking.flow_rank"].needs_priority
    assert engine.actions[FP + "decap"].params == [
        ("proxy_addr", 32), ("proxy_port", 16), ("target_addr", 32), ("target_port", 16)]
    assert engine.registers[BOUNDS].bitwidth == 16 and engine.registers[BOUNDS].size == 8
    assert engine.counters[DROPS].size == len(DropReason)
