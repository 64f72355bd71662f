"""Frame order on the wire: each discipline puts STREAM frames in exactly its order.

Two in-memory aioquic connections (no sockets); the client's QUIC logger
records every 1-RTT packet it sends with its frames.
"""

from __future__ import annotations

import itertools

import pytest
from aioquic.quic.events import StreamReset

from hostagent.schedulers import DEADLINE_EXPIRED, StreamMeta, make_scheduler
from tests.quicpair import Pair, make_pair

SIZE = 3000  # bytes per stream: about 2.6 packets of 1200 bytes


def open_streams(pair: Pair, metas: list[StreamMeta], size: int = SIZE) -> list[int]:
    ids = []
    for meta in metas:
        stream_id = pair.client.open_stream(meta)
        pair.client.send_stream_data(stream_id, bytes(size), end_stream=True)
        ids.append(stream_id)
    return ids


def leads(packets: list[list[dict]]) -> list[int]:
    return [p[0]["stream_id"] for p in packets]


def flattened(packets: list[list[dict]]) -> list[int]:
    """Stream ids in order of their data on the wire, repeats collapsed."""
    ids = [f["stream_id"] for p in packets for f in p if f["frame_type"] == "stream"]
    return [k for k, _ in itertools.groupby(ids)]


def assert_all_delivered(pair: Pair, ids: list[int], size: int = SIZE) -> None:
    sent: dict[int, int] = {}
    for packet in pair.sent_stream_frames():
        for f in packet:
            if f["frame_type"] == "stream":
                sent[f["stream_id"]] = sent.get(f["stream_id"], 0) + f["length"]
    assert sent == dict.fromkeys(ids, size)


def assert_round_robin(packets: list[list[dict]], ring_ids: list[int]) -> None:
    """Per-packet round robin over `ring_ids`: in every packet, the first of them to send
    is the head of the ring, which then moves to the back; finished streams leave it."""
    ring = list(ring_ids)
    for n, packet in enumerate(packets):
        mine = [f for f in packet if f["stream_id"] in ring_ids and f["frame_type"] == "stream"]
        if not mine:
            continue
        assert mine[0]["stream_id"] == ring[0], f"packet {n}: {mine} but the ring is {ring}"
        ring.append(ring.pop(0))
        for f in mine:
            if f["fin"]:
                ring.remove(f["stream_id"])
    assert not ring, f"streams {ring} never finished"


def assert_extra_only_after_fin(packets: list[list[dict]]) -> None:
    """A packet carries a second stream only where the one before it ended (FIN)."""
    for packet in packets:
        for before, _after in itertools.pairwise(packet):
            assert before["fin"], f"stream {before['stream_id']} shared a packet before its end"


def test_fcfs_sends_each_stream_whole_in_creation_order() -> None:
    pair = make_pair("fcfs")
    ids = open_streams(pair, [StreamMeta()] * 3)
    pair.pump()
    packets = pair.sent_stream_frames()
    assert flattened(packets) == ids
    assert_extra_only_after_fin(packets)
    assert_all_delivered(pair, ids)


def test_rr_rotates_one_stream_per_packet() -> None:
    pair = make_pair("rr")
    ids = open_streams(pair, [StreamMeta()] * 3)
    pair.pump()
    packets = pair.sent_stream_frames()
    assert leads(packets)[:6] == ids * 2
    assert_round_robin(packets, ids)
    assert_extra_only_after_fin(packets)
    assert_all_delivered(pair, ids)


@pytest.mark.parametrize("name", ["abs", "pifo-abs"])
def test_absolute_priority_serves_levels_in_order_fcfs_within(name: str) -> None:
    pair = make_pair(name)
    priorities = [3, 1, 3, 0, 1]
    ids = open_streams(pair, [StreamMeta(priority=p) for p in priorities])
    pair.pump()
    packets = pair.sent_stream_frames()
    expected = [sid for _, _, sid in sorted(zip(priorities, range(5), ids, strict=True))]
    assert flattened(packets) == expected
    assert_extra_only_after_fin(packets)
    assert_all_delivered(pair, ids)


def test_edf_serves_earliest_deadline_first() -> None:
    pair = make_pair("edf")
    deadlines = [None if d is None else pair.now + d for d in (5.0, 2.0, None, 1.0)]
    ids = open_streams(pair, [StreamMeta(deadline=d) for d in deadlines])
    pair.pump()
    packets = pair.sent_stream_frames()
    assert flattened(packets) == [ids[3], ids[1], ids[0], ids[2]]
    assert_all_delivered(pair, ids)


def test_edf_resets_expired_streams_and_keeps_the_rest() -> None:
    pair = make_pair("edf")
    ids = open_streams(pair, [StreamMeta(deadline=pair.now - 0.5),   # already late
                              StreamMeta(deadline=pair.now + 10.0)])
    pair.pump()
    packets = pair.sent_stream_frames()
    resets = [f for p in packets for f in p if f["frame_type"] == "reset_stream"]
    assert [(f["stream_id"], f["error_code"]) for f in resets] == [(ids[0], DEADLINE_EXPIRED)]
    assert all(f["stream_id"] != ids[0] for p in packets for f in p
               if f["frame_type"] == "stream"), "an expired stream must send no data"
    assert pair.client.expired_streams == [ids[0]]
    assert [e.stream_id for e in pair.server_events if isinstance(e, StreamReset)] == [ids[0]]
    assert_all_delivered_one = sum(f["length"] for p in packets for f in p
                                   if f["frame_type"] == "stream" and f["stream_id"] == ids[1])
    assert assert_all_delivered_one == SIZE


def test_edf_soft_deadline_keeps_late_streams_first() -> None:
    pair = make_pair(make_scheduler("edf", soft_deadline=True))
    ids = open_streams(pair, [StreamMeta(deadline=pair.now + 10.0),
                              StreamMeta(deadline=pair.now - 0.5)])
    pair.pump()
    packets = pair.sent_stream_frames()
    assert not any(f["frame_type"] == "reset_stream" for p in packets for f in p)
    assert flattened(packets) == [ids[1], ids[0]]


def test_ml_serves_high_level_by_deadline_then_low_level_round_robin() -> None:
    pair = make_pair(make_scheduler("ml", high_priority_max=0))
    now = pair.now
    metas = [StreamMeta(priority=5), StreamMeta(priority=0, deadline=now + 3),
             StreamMeta(priority=5), StreamMeta(priority=0, deadline=now + 1)]
    ids = open_streams(pair, metas)
    pair.pump()
    packets = pair.sent_stream_frames()
    high = [ids[3], ids[1]]
    flat = flattened(packets)
    assert flat[:2] == high
    assert_round_robin(packets, [ids[0], ids[2]])
    assert_all_delivered(pair, ids)


def test_aioquic_default_is_plain_aioquic(monkeypatch: pytest.MonkeyPatch) -> None:
    """`aioquic-default` never touches aioquic's queue, and sends what plain aioquic sends.

    (Frame for frame equality is not asserted: aioquic orders the streams that shared a
    packet by set iteration, which is not deterministic.)"""
    from hostagent.schedulers.connection import ScheduledQuicConnection

    def refuse(self: object, queue: object) -> None:
        raise AssertionError("aioquic-default must not re-arrange the queue")

    monkeypatch.setattr(ScheduledQuicConnection, "_arrange", refuse)
    sizes = [3000, 500, 2000, 4000]
    totals = []
    for scheduler in (None, "aioquic-default"):
        pair = make_pair(scheduler)
        for size in sizes:
            stream_id = pair.client.get_next_available_stream_id()
            pair.client.send_stream_data(stream_id, bytes(size), end_stream=True)
        pair.pump()
        sent: dict[int, int] = {}
        for packet in pair.sent_stream_frames():
            for f in packet:
                sent[f["stream_id"]] = sent.get(f["stream_id"], 0) + f["length"]
        totals.append(sent)
    assert totals[0] == totals[1] == {4 * i: size for i, size in enumerate(sizes)}


def test_priority_change_takes_effect_on_the_next_packet() -> None:
    pair = make_pair("pifo-abs")
    ids = open_streams(pair, [StreamMeta(priority=1), StreamMeta(priority=2)])
    pair.client.set_stream_meta(ids[1], StreamMeta(priority=0))
    pair.pump()
    assert flattened(pair.sent_stream_frames()) == [ids[1], ids[0]]


def test_unknown_scheduler_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown scheduler 'wfq'; choose one of: rr, fcfs"):
        make_scheduler("wfq")


def test_adopted_connection_follows_its_scheduler() -> None:
    """aioquic's connect()/serve() build plain connections; adopt() converts one in place."""
    from aioquic.quic.connection import QuicConnection

    from hostagent.schedulers.connection import ScheduledQuicConnection

    plain = make_pair(None)
    adopted = ScheduledQuicConnection.adopt(plain.client, "fcfs")
    assert adopted is plain.client and isinstance(adopted, QuicConnection)
    ids = open_streams(plain, [StreamMeta()] * 3)
    plain.pump()
    assert flattened(plain.sent_stream_frames()) == ids
    with pytest.raises(TypeError):
        ScheduledQuicConnection.adopt(adopted, "rr")



# -- FCFS by creation (`fcfs`) and by activation (`fcfs-activation`, quic-go's rule) ----------

def stream_frames(pair: Pair) -> list[tuple[int, int, bool]]:
    """(stream id, offset, fin) of every STREAM frame the client sent, in wire order."""
    return [(f["stream_id"], f["offset"], f["fin"]) for p in pair.sent_stream_frames()
            for f in p if f["frame_type"] == "stream"]


def turns(frames: list[tuple[int, int, bool]], names: dict[int, str]) -> str:
    """Which stream's data follows which on the wire, repeats collapsed ("abca")."""
    return "".join(k for k, _ in itertools.groupby(names[f[0]] for f in frames))


def lose_first_packet_of_a_drained_stream(scheduler: str) -> tuple[
        list[tuple[int, int, bool]], dict[int, str]]:
    """Stream A (2,000 B) drains in the first flight, whose first packet (A from offset 0)
    is lost; B and C (20,000 B each) still have data when the loss is detected."""
    pair = make_pair(scheduler)
    a, b, c = (open_streams(pair, [StreamMeta()], size)[0] for size in (2000, 20000, 20000))
    pair.flight(lose={0})
    pair.pump()
    frames = stream_frames(pair)
    assert frames[0] == (a, 0, False) and frames[1][0] == a and frames[1][2], \
        "A's two packets lead the first flight, the second with its FIN"
    assert [f for f in frames if f[0] == a and f[1] == 0] == [(a, 0, False)] * 2, \
        "A's offset 0 is sent twice: once lost, once retransmitted"
    return frames, {a: "a", b: "b", c: "c"}


def test_fcfs_by_creation_retransmits_a_drained_stream_at_once() -> None:
    """Creation order: A keeps its place at the head, so its retransmission interrupts B."""
    frames, names = lose_first_packet_of_a_drained_stream("fcfs")
    assert turns(frames, names) == "ababc"


def test_fcfs_by_activation_sends_a_retransmission_of_a_drained_stream_last() -> None:
    """quic-go's rule: lost data of a stream that had drained re-activates it at the back,
    behind B and C, which have been active (never drained) since they were opened; the
    retransmission fills the rest of the packet that carries C's FIN."""
    frames, names = lose_first_packet_of_a_drained_stream("fcfs-activation")
    assert turns(frames, names) == "abca"
    resent = next(n for n, f in enumerate(frames) if n >= 2 and names[f[0]] == "a")
    assert names[frames[resent - 1][0]] == "c" and frames[resent - 1][2], \
        "the retransmission comes right after C's last frame"


@pytest.mark.parametrize(("scheduler", "expected"), [("fcfs", "ababc"),
                                                     ("fcfs-activation", "abca")])
def test_new_data_on_a_drained_stream(scheduler: str, expected: str) -> None:
    """A drains, then the application writes to it again: FCFS by creation sends it next,
    FCFS by activation after every stream that was active before A's new data."""
    pair = make_pair(scheduler)
    a = pair.client.open_stream(StreamMeta())
    pair.client.send_stream_data(a, bytes(2000))
    b, c = open_streams(pair, [StreamMeta()] * 2, 20000)
    pair.flight()
    first = stream_frames(pair)
    assert [f[0] for f in first[:2]] == [a, a] and first[2][0] == b, "A drained, B started"
    pair.client.send_stream_data(a, bytes(1000), end_stream=True)
    pair.pump()
    frames = stream_frames(pair)
    assert turns(frames, {a: "a", b: "b", c: "c"}) == expected
    assert frames[-1][2] and sum(1 for f in frames if f[0] == a and f[2]) == 1
