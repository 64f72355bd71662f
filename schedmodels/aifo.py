"""AIFO (Yu et al., SIGCOMM'21) and PACKS (Alcoz et al., NSDI'25) in pure Python, with the
integer arithmetic a switch can do: the reference the P4 program's admission and queue
decisions are checked against, and the model the switch-scheduling experiment uses.

Both keep a sliding window of the last `window` ranks and estimate a packet's quantile
as how many of them are smaller than its rank. The window is the one *before* the packet:
the P4 program compares each stored rank with the packet's and overwrites the oldest slot
with it, so the packet never counts itself. Like the switch's registers, the window starts
full of rank 0.

AIFO: one FIFO of capacity C holding c packets. Admit a packet of rank r when
c <= k.C (the buffer is nearly empty), or when quantile(r) < (C - c) / ((1 - k) . C).

PACKS: n strict-priority queues of `depth` packets each (C = n . depth in all, c held).
Try the queues from the highest priority (0) down and take the first queue q with room
whose share admits the packet: quantile(r) < (q + 1)/n . (C - c) / ((1 - k) . C);
if none does, drop it (an admission drop, counted apart from a full queue's tail drop).

k is given in percent (`burst_pct`, 0..99) so that every comparison is an integer one:
count . (100 - k) . C  <  100 . W . (C - c)  for AIFO, and with an extra n on the left
and (q + 1) on the right for PACKS.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from p4src.pipeline import RANK_WINDOW

#: the papers' defaults: a window of 20 ranks (the P4 program's RANK_WINDOW), k = 0.1
WINDOW = RANK_WINDOW
BURST_PCT = 10


@dataclass
class RankWindow:
    """The last `size` ranks seen (oldest first), as a ring the P4 program keeps in registers;
    at first `size` zeros, as the registers start."""

    size: int = WINDOW
    ranks: deque[int] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"the window needs at least one slot, got {self.size}")
        if not self.ranks:
            self.ranks.extend([0] * self.size)

    def below(self, rank: int) -> int:
        """How many ranks in the window are smaller than `rank` (0..size)."""
        return sum(1 for r in self.ranks if r < rank)

    def push(self, rank: int) -> None:
        """Add `rank`, forgetting the oldest when the window is full."""
        self.ranks.append(rank)
        if len(self.ranks) > self.size:
            self.ranks.popleft()

    def observe(self, rank: int) -> int:
        """`below(rank)` over the window before `rank`, then `push(rank)`: one packet."""
        count = self.below(rank)
        self.push(rank)
        return count


def _check_burst(burst_pct: int) -> None:
    if not 0 <= burst_pct < 100:
        raise ValueError(f"k (burst_pct) must be 0..99 percent, got {burst_pct}")


def aifo_admits(count: int, window: int, held: int, capacity: int,
                burst_pct: int = BURST_PCT) -> bool:
    """AIFO's admission for a packet with `count` of `window` ranks below it, when the
    queue of `capacity` packets holds `held`."""
    _check_burst(burst_pct)
    if held >= capacity:
        return False
    if 100 * held <= burst_pct * capacity:
        return True
    return count * (100 - burst_pct) * capacity < 100 * window * (capacity - held)


def packs_queue(count: int, window: int, held: Sequence[int], depth: int,
                burst_pct: int = BURST_PCT) -> int | None:
    """PACKS's choice for a packet with `count` of `window` ranks below it: the queue
    (0 = highest priority) it goes to, or None to drop it. `held[q]` is queue q's
    occupancy; each queue holds `depth` packets."""
    _check_burst(burst_pct)
    n = len(held)
    capacity = n * depth
    free = capacity - sum(held)
    lhs = count * (100 - burst_pct) * n * capacity
    for q in range(n):
        if held[q] < depth and lhs < 100 * window * (q + 1) * free:
            return q
    return None


@dataclass
class Aifo:
    """AIFO's state: the rank window and k; `decide` admits or drops one packet."""

    window: RankWindow = field(default_factory=RankWindow)
    burst_pct: int = BURST_PCT

    def decide(self, rank: int, held: int, capacity: int) -> bool:
        """Whether a packet of `rank` is admitted to a FIFO of `capacity` holding `held`."""
        count = self.window.observe(rank)
        return aifo_admits(count, self.window.size, held, capacity, self.burst_pct)


@dataclass
class Packs:
    """PACKS's state: the rank window and k; `decide` maps one packet to a queue or drops it."""

    window: RankWindow = field(default_factory=RankWindow)
    burst_pct: int = BURST_PCT

    def decide(self, rank: int, held: Sequence[int], depth: int) -> int | None:
        """The queue (0 = highest priority) for a packet of `rank`, or None to drop it."""
        count = self.window.observe(rank)
        return packs_queue(count, self.window.size, held, depth, self.burst_pct)
