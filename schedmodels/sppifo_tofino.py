"""SP-PIFO as the Tofino program runs it (p4src/tna/include/tna_scheduling.p4): the model
that says how much its one inexactness costs.

Tofino lets a packet touch each bound register once per pass, so the push-down, which
must rewrite every bound after all of them were read, happens in a second pass of the
packet (resubmission). Its first pass already set the highest-priority bound to the rank;
the other bounds fall by the cost only when the packet comes back, and the packets whose
first pass falls in between see them not yet pushed down. `SpPifoResubmit(lag=k)` applies
each push-down after `k` further packets' first passes; with lag 0 it is exactly
`schedmodels.sppifo.SpPifoBounds` (the v1model program, where one packet's processing is
atomic). On hardware the lag is the packets that enter the pipe during one ingress traversal
and the resubmission path: none at low load, tens at a full pipe.

`python -m schedmodels.sppifo_tofino` prints inversions and drops on the SP-PIFO paper's
uniform-rank trace (the anchor of `schedmodels.portsim`) for several lags.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from clikit import no_options
from schedmodels import portsim
from schedmodels.sppifo import SpPifoBounds


@dataclass
class SpPifoResubmit(SpPifoBounds):
    """SP-PIFO bounds (index 0 = highest priority) with each push-down applied `lag`
    packets after the packet that caused it, as the Tofino program's resubmission does."""

    lag: int = 0
    pending: deque[list[int]] = field(default_factory=deque)  # [packets left, cost]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lag < 0:
            raise ValueError(f"lag must be >= 0, got {self.lag}")

    def _push_down(self, cost: int) -> None:
        """The second pass: every bound but the highest-priority one falls by `cost`."""
        self.bounds = [self.bounds[0]] + [max(b - cost, 0) for b in self.bounds[1:]]

    def enqueue(self, rank: int) -> int:
        """One packet's first pass (and, with lag 0, its second): the queue it goes to."""
        for item in self.pending:
            item[0] -= 1
        while self.pending and self.pending[0][0] < 0:
            self._push_down(self.pending.popleft()[1])
        bounds = self.bounds
        for queue in range(self.queues - 1, 0, -1):
            if rank >= bounds[queue]:
                bounds[queue] = rank  # push-up
                return queue
        cost = max(bounds[0] - rank, 0)
        bounds[0] = rank
        if cost:
            if self.lag == 0:
                self._push_down(cost)
            else:
                self.pending.append([self.lag, cost])
        return 0


@contextmanager
def resubmission_lag(lag: int) -> Iterator[None]:
    """Within the block, portsim's SP-PIFO runs with push-downs `lag` packets late."""
    original = portsim.SpPifoBounds
    portsim.SpPifoBounds = lambda queues=8: SpPifoResubmit(queues, lag=lag)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        portsim.SpPifoBounds = original  # type: ignore[misc]


def lag_table(lags: tuple[int, ...] = (0, 1, 4, 16, 64), packets: int = 50_000,
              load: float = 1.2, seed: int = 1) -> list[tuple[int, int, int]]:
    """(lag, inversions, drops) on the anchor trace: ranks 0-100, 8 queues of 10 packets."""
    rate = 10e9
    trace = portsim.uniform_trace(packets, load, rate, seed=seed)
    rows = []
    for lag in lags:
        with resubmission_lag(lag):  # a full queue drops after both passes moved the bounds
            result = portsim.simulate(trace, rate, "sppifo", depth=10,
                                      full_queue_moves_bounds=True)
        rows.append((lag, result.inversions, result.drops))
    return rows


def main() -> None:
    """Print the lag table beside FIFO on the same trace."""
    rate = 10e9
    fifo = portsim.simulate(portsim.uniform_trace(50_000, 1.2, rate, seed=1), rate, "fifo",
                            depth=10)
    print(f"{'discipline':<28} {'inversions':>12} {'drops':>8}")
    print(f"{'FIFO':<28} {fifo.inversions:>12,} {fifo.drops:>8,}")
    for lag, inversions, drops in lag_table():
        name = "SP-PIFO exact (v1model)" if lag == 0 else f"SP-PIFO, push-down {lag} late"
        print(f"{name:<28} {inversions:>12,} {drops:>8,}")


if __name__ == "__main__":
    no_options("python -m schedmodels.sppifo_tofino", __doc__)
    main()
