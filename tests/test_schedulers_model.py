"""Disciplines and PIFO queues on their own, without aioquic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostagent.schedulers import (
    HeapPifo,
    LinearScanPifo,
    SortedListPifo,
    StreamMeta,
    make_scheduler,
)


class FakeView:
    """A SendView over a dict of pending bytes (missing id: the stream is gone)."""

    def __init__(self) -> None:
        self.pending_bytes: dict[int, int] = {}
        self.sent: dict[int, int] = {}

    def pending(self, stream_id: int) -> int | None:
        return self.pending_bytes.get(stream_id)

    def progress(self, stream_id: int) -> int:
        return self.sent.get(stream_id, 0)

    def send(self, stream_id: int, n: int) -> None:
        take = min(n, self.pending_bytes[stream_id])
        self.pending_bytes[stream_id] -= take
        self.sent[stream_id] = self.sent.get(stream_id, 0) + take


@pytest.mark.parametrize("cls", [LinearScanPifo, SortedListPifo, HeapPifo])
def test_pifo_orders_by_rank_then_insertion(cls: type) -> None:
    q = cls()
    for item, rank in [("a", 3), ("b", 1), ("c", 3), ("d", 0), ("e", 1)]:
        q.push(item, rank)
    assert list(q) == ["d", "b", "e", "a", "c"]
    assert q.peek() == "d"
    q.remove("b")
    q.push("a", 0)  # re-push moves it, behind the earlier rank-0 item
    assert [q.pop() for _ in range(len(q))] == ["d", "a", "e", "c"]
    with pytest.raises(IndexError):
        q.pop()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 30), st.integers(0, 9)),
        st.tuples(st.just("pop"), st.just(0), st.just(0)),
        st.tuples(st.just("remove"), st.integers(0, 30), st.just(0)),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_heap_and_sorted_list_pifos_agree(ops: list[tuple[str, int, int]]) -> None:
    a, b, c = SortedListPifo(), HeapPifo(), LinearScanPifo()
    for op, item, rank in ops:
        if op == "push":
            for q in (a, b, c):
                q.push(item, rank)
        elif op == "remove":
            for q in (a, b, c):
                q.remove(item)
        elif len(a):
            assert a.pop() == b.pop() == c.pop()
        assert len(a) == len(b) == len(c)
        assert (item in a) == (item in b) == (item in c)
    assert list(a) == list(b) == list(c)


scheduler_runs = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 9), st.integers(1, 5000)),
        st.tuples(st.just("packet"), st.integers(200, 1500), st.just(0)),
        st.tuples(st.just("reprioritise"), st.integers(0, 40), st.integers(0, 9)),
        st.tuples(st.just("close"), st.integers(0, 40), st.just(0)),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(scheduler_runs)
def test_abs_and_pifo_abs_choose_identically(run: list[tuple[str, int, int]]) -> None:
    """ABS (sorted list) and PIFO-ABS (heap) give the same service order on any input."""
    schedulers = [make_scheduler("abs"), make_scheduler("pifo-abs")]
    views = [FakeView(), FakeView()]
    next_id = 0
    for op, x, y in run:
        for sched, view in zip(schedulers, views, strict=True):
            if op == "open":
                sched.register(next_id, StreamMeta(priority=x))
                view.pending_bytes[next_id] = y
                sched.activate(next_id)
            elif op == "reprioritise" and sched.is_registered(x):
                sched.register(x, StreamMeta(priority=y))
            elif op == "close" and x in view.pending_bytes:
                del view.pending_bytes[x]
        if op == "open":
            next_id += 1
        if op == "packet":
            chosen = [s.select(v, 2 * x) for s, v in zip(schedulers, views, strict=True)]
            assert chosen[0] == chosen[1]
            room = x  # a packet of x bytes, filled in the chosen order
            for stream_id in chosen[0]:
                take = min(room, views[0].pending_bytes[stream_id])
                for view in views:
                    view.send(stream_id, take)
                room -= take


def test_abs_selection_is_priority_then_fcfs() -> None:
    sched = make_scheduler("pifo-abs")
    view = FakeView()
    for stream_id, priority in enumerate([2, 0, 2, 1, 0]):
        sched.register(stream_id, StreamMeta(priority=priority))
        view.pending_bytes[stream_id] = 100
        sched.activate(stream_id)
    assert sched.select(view, 10_000) == [1, 4, 3, 0, 2]
    assert sched.select(view, 150) == [1, 4], "stops once the budget is covered"


def test_idle_streams_leave_and_come_back() -> None:
    sched = make_scheduler("fcfs")
    view = FakeView()
    for stream_id in range(3):
        sched.register(stream_id, StreamMeta())
        view.pending_bytes[stream_id] = 100
        sched.activate(stream_id)
    view.pending_bytes[0] = 0
    assert sched.select(view, 10_000) == [1, 2]
    view.pending_bytes[0] = 50
    sched.activate(0)
    assert sched.select(view, 10_000) == [0, 1, 2]
    del view.pending_bytes[1]  # aioquic discarded it
    assert sched.select(view, 10_000) == [0, 2]
    assert not sched.is_registered(1)


@pytest.mark.parametrize(("name", "after"), [("fcfs", [0, 1, 2]), ("fcfs-activation", [1, 2, 0])])
def test_fcfs_by_creation_or_by_activation(name: str, after: list[int]) -> None:
    """Stream 0 drains and gets data again: FCFS by creation puts it back at the head,
    FCFS by activation (quic-go's send queue) behind the streams active meanwhile."""
    sched = make_scheduler(name)
    view = FakeView()
    for stream_id in range(3):
        sched.register(stream_id, StreamMeta())
        view.pending_bytes[stream_id] = 100
        sched.activate(stream_id)
    assert sched.select(view, 10_000) == [0, 1, 2]
    view.send(0, 100)
    assert sched.select(view, 10_000) == [1, 2]
    view.pending_bytes[0] = 50  # new data, or a retransmission
    sched.activate(0)
    assert sched.select(view, 10_000) == after
    sched.activate(1)  # already active: keeps its place
    assert sched.select(view, 10_000) == after


def test_edf_expiry_returns_each_late_stream_once() -> None:
    sched = make_scheduler("edf")
    for stream_id, deadline in enumerate([1.0, 3.0, None, 2.0]):
        sched.register(stream_id, StreamMeta(deadline=deadline))
    assert sched.expired(0.5) == []
    assert sched.expired(2.5) == [0, 3]
    assert sched.expired(2.5) == []
    sched.register(1, StreamMeta(deadline=10.0))  # deadline moved: the old one no longer counts
    assert sched.expired(5.0) == []
    assert sched.expired(11.0) == [1]


def test_rr_rotates_only_after_the_head_sent() -> None:
    sched = make_scheduler("rr")
    view = FakeView()
    for stream_id in range(3):
        sched.register(stream_id, StreamMeta())
        view.pending_bytes[stream_id] = 5000
        sched.activate(stream_id)
    assert sched.select(view, 1000) == [0]
    assert sched.select(view, 1000) == [0], "nothing sent: no rotation"
    view.send(0, 1000)
    assert sched.select(view, 1000) == [1]
    view.send(1, 1000)
    assert sched.select(view, 1000) == [2]
    view.send(2, 1000)
    assert sched.select(view, 1000) == [0]


def test_ml_moves_a_stream_between_levels() -> None:
    sched = make_scheduler("ml", high_priority_max=0)
    view = FakeView()
    for stream_id, meta in enumerate([StreamMeta(priority=3), StreamMeta(priority=0,
                                                                          deadline=5.0)]):
        sched.register(stream_id, meta)
        view.pending_bytes[stream_id] = 500
        sched.activate(stream_id)
    assert sched.select(view, 10_000) == [1, 0]
    sched.register(0, StreamMeta(priority=0, deadline=1.0))
    sched.activate(0)
    assert sched.select(view, 10_000) == [0, 1]
