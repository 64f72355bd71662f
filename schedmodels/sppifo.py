"""SP-PIFO (Alcoz, Dietmüller, Vanbever, NSDI'20) in pure Python: the reference the P4
program's registers are checked against, and the model the switch-scheduling
experiment compares with.

n strict-priority queues, each with a bound, all bounds 0 at start; queue 0 is
the highest priority (BMv2 priority n-1). A packet of rank r: scan from the
lowest-priority queue up and take the first whose bound <= r, then set that
bound to r (push-up). If none admits r (r < bound of queue 0), take queue 0 and
lower every bound by cost = bound0 - r (push-down), saturating at 0 so that
nothing wraps around, unlike the upstream v1model code's unsigned subtraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p4src.pipeline import RANK_MAX


@dataclass
class SpPifoBounds:
    """The bounds of `queues` SP-PIFO queues; index 0 is the highest-priority queue."""

    queues: int = 8
    bounds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.queues < 1:
            raise ValueError("SP-PIFO needs at least one queue")
        if not self.bounds:
            self.bounds = [0] * self.queues
        if len(self.bounds) != self.queues:
            raise ValueError(f"{len(self.bounds)} bounds for {self.queues} queues")

    def enqueue(self, rank: int) -> int:
        """Map `rank` to a queue (0 = highest priority) and adapt the bounds."""
        if not 0 <= rank <= RANK_MAX:
            raise ValueError(f"rank {rank} outside 0..{RANK_MAX}")
        bounds = self.bounds
        for queue in range(self.queues - 1, -1, -1):
            if rank >= bounds[queue]:
                bounds[queue] = rank  # push-up
                return queue
        cost = bounds[0] - rank  # push-down: rank < bounds[0], so cost > 0
        self.bounds = [max(b - cost, 0) for b in bounds]
        return 0

    def bmv2_priority(self, queue: int) -> int:
        """BMv2's `standard_metadata.priority` for SP-PIFO queue `queue` (n-1 served first)."""
        return self.queues - 1 - queue
