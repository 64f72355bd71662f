"""Stream scheduling disciplines: which streams' data goes into the next QUIC packet.

A discipline sees stream ids, their metadata (`StreamMeta`) and, through a
`SendView`, how many bytes each stream has ready. `select` returns the ready
streams in service order, just enough of them to fill one packet; the
connection hook (`connection.py`) puts them at the head of aioquic's send
queue. Disciplines know nothing about sockets or aioquic internals, so they are
tested and benchmarked on their own.

Disciplines (`make_scheduler(name)`):

- ``rr``: round robin per packet, as in the seed thesis: the stream at the head
  fills a packet, then moves to the back.
- ``fcfs``: first come, first served in creation order: the first stream sends
  all its data before the next one starts, and keeps its place for good (a
  retransmission of an early stream goes before a later stream's new data).
- ``fcfs-activation``: first come, first served in activation order, as quic-go's
  send queue of the seed thesis's time: a stream joins the back of the queue each
  time it becomes active (new data, or a retransmission after it had drained) and
  stays at the front while it has data; a drained stream leaves the queue.
- ``edf``: earliest deadline first; a stream whose deadline has passed is reset
  (``soft_deadline=True`` keeps it, served first as the most overdue).
- ``abs``: absolute priority (smaller number first), FCFS within a level, on a
  sorted list that inserts by scanning from the head (the seed's base ABS).
- ``pifo-abs``: the same order as ``abs`` from a binary heap (O(log n)).
- ``ml``: multi-level: streams with ``priority <= high_priority_max`` are served
  first by EDF, the rest by round robin.
- ``aioquic-default``: aioquic's own order, untouched (round robin over every
  stream that sent in the last packet since aioquic 1.0).
"""

from __future__ import annotations

import heapq
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, cast

from hostagent.schedulers.pifo import HeapPifo, LinearScanPifo, Pifo

#: Priority of streams registered without one. Smaller numbers are served first.
DEFAULT_PRIORITY = 0


@dataclass(frozen=True)
class StreamMeta:
    """What an application declares about a stream when it creates it.

    priority: smaller is more urgent (0 first), as ranks in a PIFO.
    deadline: absolute time, in the connection's clock (the `now` given to
        aioquic), by which the stream should be delivered; None for none.
    traffic_class: free-form label carried to the controller and the results.
    """

    priority: int = DEFAULT_PRIORITY
    deadline: float | None = None
    traffic_class: str | None = None


class SendView(Protocol):
    """What a discipline may ask about the streams of one connection."""

    def pending(self, stream_id: int) -> int | None:
        """Bytes the stream could send now; 0 when idle; None when the stream is gone."""

    def progress(self, stream_id: int) -> int:
        """Highest stream offset sent so far (grows only when new data is sent)."""


class StreamScheduler(ABC):
    """A stream scheduling discipline for one connection endpoint."""

    name: ClassVar[str]
    #: False only for aioquic's own order: the hook then leaves the queue alone.
    reorders: ClassVar[bool] = True

    def __init__(self) -> None:
        self.meta: dict[int, StreamMeta] = {}
        self._seq: dict[int, int] = {}
        self._counter = itertools.count()

    def register(self, stream_id: int, meta: StreamMeta) -> None:
        """Declare (or update) a stream's metadata. The first call fixes its FCFS order."""
        if stream_id not in self._seq:
            self._seq[stream_id] = next(self._counter)
        self.meta[stream_id] = meta
        self._on_register(stream_id, meta)

    def is_registered(self, stream_id: int) -> bool:
        return stream_id in self.meta

    def forget(self, stream_id: int) -> None:
        """Drop a stream that aioquic discarded."""
        self.meta.pop(stream_id, None)
        self._seq.pop(stream_id, None)
        self._on_forget(stream_id)

    def expired(self, now: float) -> list[int]:
        """Streams to reset because their deadline passed (only deadline disciplines)."""
        return []

    @abstractmethod
    def activate(self, stream_id: int) -> None:
        """A registered stream has data to send (again)."""

    @abstractmethod
    def select(self, view: SendView, budget: int) -> list[int]:
        """Ready streams in service order, until their pending bytes reach `budget`."""

    def _on_register(self, stream_id: int, meta: StreamMeta) -> None:  # noqa: B027
        """Optional hook for disciplines that index metadata."""

    def _on_forget(self, stream_id: int) -> None:  # noqa: B027
        """Optional hook for disciplines that index metadata."""


class RankedScheduler(StreamScheduler):
    """A discipline defined by a rank per stream, served from a PIFO (smallest rank first)."""

    pifo_factory: ClassVar[Callable[[], Pifo]] = HeapPifo

    def __init__(self) -> None:
        super().__init__()
        self.pifo: Pifo = type(self).pifo_factory()

    @abstractmethod
    def rank(self, stream_id: int) -> tuple[float, ...]:
        """The stream's rank; ties never happen because the FCFS sequence comes last."""

    def _on_register(self, stream_id: int, meta: StreamMeta) -> None:
        if stream_id in self.pifo:  # metadata changed: move it
            self.pifo.push(stream_id, self.rank(stream_id))

    def _on_forget(self, stream_id: int) -> None:
        self.pifo.remove(stream_id)

    def activate(self, stream_id: int) -> None:
        if stream_id not in self.pifo and stream_id in self.meta:
            self.pifo.push(stream_id, self.rank(stream_id))

    def deactivate(self, stream_id: int) -> None:
        """The stream was found with nothing to send: it leaves the PIFO until `activate`."""
        self.pifo.remove(stream_id)

    def select(self, view: SendView, budget: int) -> list[int]:
        chosen: list[int] = []
        total = 0
        while total < budget and len(self.pifo):
            stream_id = cast(int, self.pifo.pop())  # this PIFO holds stream ids only
            pending = view.pending(stream_id)
            if pending is None:
                self.forget(stream_id)
                continue
            if pending > 0:
                chosen.append(stream_id)
                total += pending
            else:  # idle streams leave the PIFO until activated again
                self.deactivate(stream_id)
        for stream_id in chosen:  # re-insert: they stay backlogged until sent
            self.pifo.push(stream_id, self.rank(stream_id))
        return chosen


class FcfsScheduler(RankedScheduler):
    """FCFS by creation: a stream's place is fixed when it is registered."""

    name = "fcfs"

    def rank(self, stream_id: int) -> tuple[float, ...]:
        return (self._seq[stream_id],)


class FcfsActivationScheduler(RankedScheduler):
    """FCFS by activation, as quic-go's send queue in the seed thesis's time.

    quic-go appends a stream to its send queue when the stream reports data to
    send and is not queued yet (`AddActiveStream`); the seed's FCFS keeps the
    head stream at the front while it has data; a stream whose data is all sent
    leaves the queue. So a stream that drained and then gets new data, or a
    retransmission of lost data, goes to the back, behind every stream that was
    active by then, while a stream that never drained keeps its place.

    A drained stream is at the head (everything before it drained too), so the
    next `select` finds it idle and drops its activation; the connection hook
    runs `select` again right after every packet, before the application or a
    loss can give the stream more data.
    """

    name = "fcfs-activation"

    def __init__(self) -> None:
        super().__init__()
        self._activation: dict[int, int] = {}  # active streams: their activation number
        self._activations = itertools.count()

    def rank(self, stream_id: int) -> tuple[float, ...]:
        return (self._activation[stream_id],)

    def activate(self, stream_id: int) -> None:
        if stream_id in self.meta and stream_id not in self._activation:
            self._activation[stream_id] = next(self._activations)
            self.pifo.push(stream_id, self.rank(stream_id))

    def deactivate(self, stream_id: int) -> None:
        if self._activation.pop(stream_id, None) is not None:
            self.pifo.remove(stream_id)

    def _on_forget(self, stream_id: int) -> None:
        self._activation.pop(stream_id, None)
        super()._on_forget(stream_id)


class AbsScheduler(RankedScheduler):
    """Absolute priority on a sorted list with insertion by linear scan (the seed thesis's
    base ABS)."""

    name = "abs"
    pifo_factory: ClassVar[Callable[[], Pifo]] = LinearScanPifo

    def rank(self, stream_id: int) -> tuple[float, ...]:
        return (self.meta[stream_id].priority, self._seq[stream_id])


class PifoAbsScheduler(AbsScheduler):
    """Absolute priority on a binary heap: the same order as `abs`, O(log n)."""

    name = "pifo-abs"
    pifo_factory = HeapPifo


class EdfScheduler(RankedScheduler):
    """Earliest deadline first; streams without a deadline come last, FCFS."""

    name = "edf"

    def __init__(self, soft_deadline: bool = False) -> None:
        super().__init__()
        self.soft_deadline = soft_deadline
        self._deadlines: list[tuple[float, int]] = []  # heap for expiry checks

    def rank(self, stream_id: int) -> tuple[float, ...]:
        deadline = self.meta[stream_id].deadline
        return (math.inf if deadline is None else deadline, self._seq[stream_id])

    def _on_register(self, stream_id: int, meta: StreamMeta) -> None:
        super()._on_register(stream_id, meta)
        if meta.deadline is not None:
            heapq.heappush(self._deadlines, (meta.deadline, stream_id))

    def expired(self, now: float) -> list[int]:
        if self.soft_deadline:
            return []
        late: list[int] = []
        while self._deadlines and self._deadlines[0][0] < now:
            deadline, stream_id = heapq.heappop(self._deadlines)
            meta = self.meta.get(stream_id)
            if meta is not None and meta.deadline == deadline:  # not re-registered since
                late.append(stream_id)
                self.forget(stream_id)
        return late


class RoundRobinScheduler(StreamScheduler):
    """Per-packet round robin: the head stream fills a packet, then goes to the back."""

    name = "rr"

    def __init__(self) -> None:
        super().__init__()
        self._ring: dict[int, None] = {}  # insertion-ordered set: the rotation
        self._head: tuple[int, int] | None = None  # (stream, its progress when chosen)

    def _on_forget(self, stream_id: int) -> None:
        self._ring.pop(stream_id, None)

    def activate(self, stream_id: int) -> None:
        if stream_id in self.meta and stream_id not in self._ring:
            self._ring[stream_id] = None

    def _rotate_if_served(self, view: SendView) -> None:
        """The previous head moves to the back once it has sent new data."""
        if self._head is None:
            return
        stream_id, progress = self._head
        if stream_id in self._ring and view.progress(stream_id) > progress:
            del self._ring[stream_id]
            self._ring[stream_id] = None
            self._head = None

    def select(self, view: SendView, budget: int) -> list[int]:
        self._rotate_if_served(view)
        chosen: list[int] = []
        idle: list[int] = []
        total = 0
        for stream_id in self._ring:
            if total >= budget:
                break
            pending = view.pending(stream_id)
            if pending is None or pending == 0:
                idle.append(stream_id)
                continue
            chosen.append(stream_id)
            total += pending
        for stream_id in idle:
            if view.pending(stream_id) is None:
                self.forget(stream_id)
            else:
                del self._ring[stream_id]
        if chosen and (self._head is None or self._head[0] != chosen[0]):
            self._head = (chosen[0], view.progress(chosen[0]))
        return chosen


class MultiLevelScheduler(StreamScheduler):
    """Two levels: EDF for streams with priority <= high_priority_max, then round robin."""

    name = "ml"

    def __init__(self, high_priority_max: int = 0, soft_deadline: bool = False) -> None:
        super().__init__()
        self.high_priority_max = high_priority_max
        self.high = EdfScheduler(soft_deadline=soft_deadline)
        self.low = RoundRobinScheduler()

    def _level(self, meta: StreamMeta) -> StreamScheduler:
        return self.high if meta.priority <= self.high_priority_max else self.low

    def _on_register(self, stream_id: int, meta: StreamMeta) -> None:
        level, other = self._level(meta), (self.low if self._level(meta) is self.high
                                           else self.high)
        if other.is_registered(stream_id):
            other.forget(stream_id)
        level.register(stream_id, meta)

    def _on_forget(self, stream_id: int) -> None:
        self.high.forget(stream_id)
        self.low.forget(stream_id)

    def activate(self, stream_id: int) -> None:
        meta = self.meta.get(stream_id)
        if meta is not None:
            self._level(meta).activate(stream_id)

    def expired(self, now: float) -> list[int]:
        late = self.high.expired(now)
        for stream_id in late:
            self.forget(stream_id)
        return late

    def select(self, view: SendView, budget: int) -> list[int]:
        chosen = self.high.select(view, budget)
        used = sum(view.pending(s) or 0 for s in chosen)
        if used < budget:
            chosen += self.low.select(view, budget - used)
        return chosen


class AioquicDefaultScheduler(StreamScheduler):
    """aioquic's own order, for comparison: the hook does not touch the queue."""

    name = "aioquic-default"
    reorders = False

    def activate(self, stream_id: int) -> None:
        pass

    def select(self, view: SendView, budget: int) -> list[int]:
        return []


SCHEDULERS: dict[str, type[StreamScheduler]] = {
    cls.name: cls
    for cls in (RoundRobinScheduler, FcfsScheduler, FcfsActivationScheduler, EdfScheduler,
                AbsScheduler, PifoAbsScheduler, MultiLevelScheduler, AioquicDefaultScheduler)
}


def make_scheduler(name: str, **options: object) -> StreamScheduler:
    """A new scheduler by name (`rr`, `fcfs`, `fcfs-activation`, `edf`, `abs`, `pifo-abs`,
    `ml`, `aioquic-default`)."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose one of: "
                         f"{', '.join(SCHEDULERS)}") from None
    return cls(**options)  # type: ignore[arg-type]
