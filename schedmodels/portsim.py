"""A pure-Python reference for the switch-scheduling experiment: one output port, no sockets.

A discrete-event simulation of one port of `rate_bps` fed by a packet trace
(arrival time, rank, size in bytes on the wire), under four disciplines:

- ``fifo``: one drop-tail queue;
- ``strict``: rank ranges -> `queues` strict-priority queues (queue 0 served first),
  each drop-tail, like the switch's STRICT mode and its ``[[strict]]`` ranges;
- ``sppifo``: `queues` strict-priority queues, the queue chosen by
  `schedmodels.sppifo.SpPifoBounds`, drop-tail per queue; a full queue drops the packet and
  changes no bound (the paper's rule; the v1model switch cannot honour it, see
  `full_queue_moves_bounds`);
- ``pifo``: the ideal: always serve the smallest rank buffered, FIFO among equal
  ranks, one drop-tail buffer as large as all the queues together;
- ``aifo``: one FIFO (as ``fifo``) behind AIFO's rank-aware admission
  (`schedmodels.aifo`);
- ``packs``: `queues` strict-priority queues, PACKS choosing the queue or dropping the
  packet from its rank's quantile and the occupancies (`schedmodels.aifo`).

Drops are counted in all, and apart as admission drops (AIFO's and PACKS's refusals of
a packet that would have fitted) and tail drops (a full queue).

Inversions are counted as the SP-PIFO authors' simulator counts them (the
evaluation code of their repository, nsg-ethz/SP-PIFO): when a packet of rank r is
dequeued, every packet still buffered with a rank < r is one inversion. It also
reports drops and, per rank, the queueing delay (from arrival to the start of transmission).

Conventions, so that tiny traces can be computed by hand: the packet being
transmitted is not in the buffer; every arriving packet is first mapped and
buffered (so it moves SP-PIFO's bounds even when the port is idle, as in the
switch), and a packet that finds the port idle leaves at once (zero delay);
when the port becomes free at the same instant as packets arrive, the buffered
packet is dequeued first.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clikit import no_options
from schedmodels.aifo import BURST_PCT, WINDOW, Aifo, Packs, RankWindow
from schedmodels.sppifo import SpPifoBounds
from schedmodels.stats import quartiles

DISCIPLINES = ("fifo", "strict", "sppifo", "pifo", "aifo", "packs")


@dataclass(frozen=True)
class Packet:
    """One packet of a trace: arrival time (s), rank (smaller is more urgent), size (bytes)."""

    time: float
    rank: int
    size: int


@dataclass(frozen=True)
class StrictRange:
    """Ranks low..high (inclusive) go to queue `queue` (0 = served first)."""

    low: int
    high: int
    queue: int


@dataclass
class RankStats:
    """Per-rank outcome: packets offered, delivered, dropped, queueing delays (s)."""

    offered: int = 0
    dropped: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return len(self.delays)

    def summary(self) -> dict[str, float | int | None]:
        """JSON-friendly: counts, drop rate and delay quartiles in ms."""
        qs = quartiles(self.delays)
        return {"offered": self.offered, "delivered": self.delivered, "dropped": self.dropped,
                "drop_rate": self.dropped / self.offered if self.offered else 0.0,
                "delay_ms_p25": None if qs is None else 1000 * qs[0],
                "delay_ms_p50": None if qs is None else 1000 * qs[1],
                "delay_ms_p75": None if qs is None else 1000 * qs[2]}


@dataclass
class SimResult:
    """What one simulation produced: totals, per-rank stats, the departure order."""

    discipline: str
    inversions: int = 0
    drops: int = 0
    #: of `drops`, those refused by AIFO's or PACKS's admission (the rest: a full queue)
    admission_drops: int = 0
    per_rank: dict[int, RankStats] = field(default_factory=dict)
    #: indices into the trace in the order they left the port
    departures: list[int] = field(default_factory=list)
    #: when each of `departures` started transmission (s, the trace's clock)
    starts: list[float] = field(default_factory=list)
    #: SP-PIFO's bounds at the end (queue 0 first); empty for the other disciplines
    bounds: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-friendly totals and per-rank summaries."""
        return {"discipline": self.discipline, "inversions": self.inversions,
                "drops": self.drops, "admission_drops": self.admission_drops,
                "delivered": len(self.departures),
                "per_rank": {str(r): s.summary() for r, s in sorted(self.per_rank.items())}}


class RankCounter:
    """How many buffered packets have a rank below r: a Fenwick tree over the trace's ranks.

    The trace's distinct ranks are known up front, so they are compressed to indices and
    every query and update is O(log R), which keeps a 100k-packet trace fast.
    """

    def __init__(self, ranks: Iterable[int]) -> None:
        self.values = sorted(set(ranks))
        self.tree = [0] * (len(self.values) + 1)

    def add(self, rank: int, delta: int) -> None:
        i = bisect.bisect_left(self.values, rank) + 1
        while i < len(self.tree):
            self.tree[i] += delta
            i += i & -i

    def below(self, rank: int) -> int:
        i = bisect.bisect_left(self.values, rank)  # count of values strictly < rank
        total = 0
        while i > 0:
            total += self.tree[i]
            i -= i & -i
        return total


class _Buffer:
    """The buffered packets of one discipline: admit (or refuse) on arrival, pop on dequeue."""

    def __init__(self, discipline: str, queues: int, depth: int, fifo_depth: int,
                 strict: Sequence[StrictRange], full_queue_moves_bounds: bool,
                 window: int = WINDOW, burst_pct: int = BURST_PCT,
                 initial_window: Sequence[int] = ()) -> None:
        self.discipline = discipline
        self.depth = depth
        self.fifo_depth = fifo_depth
        self.capacity = queues * depth
        self.strict = sorted(strict, key=lambda r: r.low)
        if any(not 0 <= r.queue < queues for r in self.strict):
            raise ValueError(f"a strict range names a queue outside 0..{queues - 1}")
        self.moves_bounds = full_queue_moves_bounds
        self.sppifo = SpPifoBounds(queues)
        given = list(initial_window)[-window:]
        start = deque([0] * (window - len(given)) + given)
        self.aifo = Aifo(RankWindow(window, deque(start)), burst_pct)
        self.packs = Packs(RankWindow(window, deque(start)), burst_pct)
        self.refused = False  # the last refusal was an admission drop, not a full queue
        self.queues: list[deque[int]] = [deque() for _ in range(queues)]
        self.heap: list[tuple[int, int, int]] = []
        self.arrivals = 0  # admission order, the PIFO's tie-break (FIFO among equal ranks)
        self.size = 0

    def strict_queue(self, rank: int) -> int:
        """The queue of `rank` under the STRICT ranges; unmatched ranks go to the last queue."""
        for r in self.strict:
            if r.low <= rank <= r.high:
                return r.queue
        return len(self.queues) - 1

    def admit(self, index: int, rank: int) -> bool:
        """Buffer packet `index`; False when it is dropped (`refused` says whether by
        admission rather than a full queue)."""
        self.refused = False
        if self.discipline in ("fifo", "aifo"):
            if self.size >= self.fifo_depth:
                if self.discipline == "aifo":
                    self.aifo.window.push(rank)  # the switch sees every packet's rank
                return False
            if self.discipline == "aifo" and not self.aifo.decide(rank, self.size,
                                                                   self.fifo_depth):
                self.refused = True
                return False
            self.queues[0].append(index)
        elif self.discipline == "packs":
            held = [len(q) for q in self.queues]
            q = self.packs.decide(rank, held, self.depth)
            if q is None:
                self.refused = any(h < self.depth for h in held)
                return False
            self.queues[q].append(index)
        elif self.discipline == "pifo":
            if self.size >= self.capacity:
                return False
            self.arrivals += 1
            heapq.heappush(self.heap, (rank, self.arrivals, index))
        else:
            if self.discipline == "strict":
                q = self.strict_queue(rank)
            else:
                saved = list(self.sppifo.bounds)
                q = self.sppifo.enqueue(rank)
                if len(self.queues[q]) >= self.depth and not self.moves_bounds:
                    self.sppifo.bounds = saved  # a full queue changes no bound
            if len(self.queues[q]) >= self.depth:
                return False
            self.queues[q].append(index)
        self.size += 1
        return True

    def pop(self) -> int:
        """The index of the next packet to transmit (the buffer is not empty)."""
        self.size -= 1
        if self.discipline == "pifo":
            return heapq.heappop(self.heap)[2]
        for q in self.queues:
            if q:
                return q.popleft()
        raise IndexError("pop from an empty buffer")


def simulate(trace: Sequence[Packet], rate_bps: float, discipline: str, *, queues: int = 8,
             depth: int = 64, fifo_depth: int | None = None,
             strict: Sequence[StrictRange] = (),
             full_queue_moves_bounds: bool = False, window: int = WINDOW,
             burst_pct: int = BURST_PCT, initial_window: Sequence[int] = ()) -> SimResult:
    """Run `trace` (sorted by time, or sorted here) through one port under `discipline`.

    `depth` is each priority queue's capacity in packets; the PIFO holds `queues * depth`;
    FIFO holds `fifo_depth` (default `queues * depth`, the same total buffer; the switch's
    FIFO mode uses one queue, so the live experiment passes `depth`).
    `full_queue_moves_bounds` mimics the v1model switch, where a packet that a full queue
    drops has already moved the SP-PIFO bounds. `window` and `burst_pct` (k in percent)
    are AIFO's and PACKS's; AIFO's FIFO holds `fifo_depth` like FIFO's. Their rank window
    starts full of rank 0, as the switch's registers do, unless `initial_window` gives
    its ranks (oldest first; the switch keeps the ranks of an earlier AIFO or PACKS run,
    and the window is padded with zeros in front when shorter).
    """
    if discipline not in DISCIPLINES:
        raise ValueError(f"unknown discipline {discipline!r}; choose from {DISCIPLINES}")
    if rate_bps <= 0 or queues < 1 or depth < 1:
        raise ValueError("rate, queues and depth must be positive")
    order = sorted(range(len(trace)), key=lambda i: trace[i].time)
    buf = _Buffer(discipline, queues, depth, queues * depth if fifo_depth is None else fifo_depth,
                  strict, full_queue_moves_bounds, window, burst_pct, initial_window)
    counter = RankCounter(p.rank for p in trace)
    result = SimResult(discipline)
    for p in trace:
        result.per_rank.setdefault(p.rank, RankStats()).offered += 1

    def transmit(index: int, start: float) -> float:
        p = trace[index]
        result.per_rank[p.rank].delays.append(start - p.time)
        result.departures.append(index)
        result.starts.append(start)
        return start + p.size * 8 / rate_bps

    free_at = float("-inf")  # when the port finishes the packet it is sending
    now = float("-inf")  # time of the last arrival handled
    pos = 0
    while pos < len(order) or buf.size:
        next_arrival = trace[order[pos]].time if pos < len(order) else float("inf")
        if buf.size and free_at <= next_arrival:
            index = buf.pop()
            rank = trace[index].rank
            counter.add(rank, -1)
            result.inversions += counter.below(rank)
            free_at = transmit(index, max(free_at, now))
            continue
        index = order[pos]
        pos += 1
        p = trace[index]
        now = p.time
        if buf.admit(index, p.rank):  # every packet is mapped, even one that leaves at once
            counter.add(p.rank, 1)
        else:
            result.drops += 1
            result.admission_drops += buf.refused
            result.per_rank[p.rank].dropped += 1
    result.bounds = list(buf.sppifo.bounds) if discipline == "sppifo" else []
    return result


def even_strict_ranges(low: int, high: int, queues: int = 8) -> list[StrictRange]:
    """Split ranks low..high into `queues` contiguous ranges of (nearly) equal width."""
    span = high - low + 1
    edges = [low + span * q // queues for q in range(queues + 1)]
    return [StrictRange(edges[q], edges[q + 1] - 1, q) for q in range(queues)
            if edges[q + 1] > edges[q]]


def uniform_trace(packets: int, load: float, rate_bps: float, size: int = 1000,
                  ranks: tuple[int, int] = (0, 100), seed: int = 1) -> list[Packet]:
    """Poisson arrivals of `size`-byte packets at `load` x the port rate, ranks uniform in
    `ranks` (inclusive): the SP-PIFO paper's uniform-rank workload, seeded."""
    rng = random.Random(seed)
    mean_gap = size * 8 / rate_bps / load
    t = 0.0
    trace = []
    for _ in range(packets):
        t += rng.expovariate(1 / mean_gap)
        trace.append(Packet(t, rng.randint(*ranks), size))
    return trace


def anchor(packets: int = 50_000, load: float = 1.2, seed: int = 1) -> dict[str, SimResult]:
    """The paper's uniform-rank setting in this model: ranks 0-100, 8 queues of 10 packets
    (FIFO and PIFO hold the same 80), Poisson arrivals of 1000-byte packets at `load`."""
    rate = 10e9
    trace = uniform_trace(packets, load, rate, seed=seed)
    strict = even_strict_ranges(0, 100)
    return {d: simulate(trace, rate, d, depth=10, strict=strict) for d in DISCIPLINES}


def main() -> None:
    """Print the uniform-rank anchor: FIFO, STRICT, SP-PIFO and PIFO on one seeded trace."""
    results = anchor()
    for d, r in results.items():
        print(f"{d:<8} inversions {r.inversions:>10,}  drops {r.drops:>6,}")
    fifo, sp = results["fifo"].inversions, results["sppifo"].inversions
    print(f"FIFO / SP-PIFO = {fifo / sp:.1f}x (paper, TCP traffic at 10 Gbit/s: "
          f"864k / 262k = 3.3x)")


if __name__ == "__main__":
    no_options("python -m schedmodels.portsim", __doc__)
    main()
