"""The Tofino (TNA) program, p4src/tna/masque_pifo_tna.p4: where it and its compiled outputs
are, the Python copy of the constants only it has (p4src/tna/include/tna_defines.p4 and
the table sizes it shrank to fit Tofino 1), and the entries of its `admission_thresholds`
table.

Tofino has no general multiplier, so the TNA program cannot evaluate AIFO's and PACKS's
admission rules (products of the window count, k, W, the capacity and the free buffer) the
way the v1model program does. The control plane evaluates them instead, for every number
of free cells and every window count, and installs the answers as a table keyed on (mode,
free cells as a range, count): which queues' shares admit the packet, as a bit mask. The
data plane computes the free cells, looks the mask up and picks the queue.
`aifo_threshold_entries` and `packs_threshold_entries` compute those entries;
`aifo_decision` and `packs_decision` are what the data plane then does with them, so tests
can hold them to the reference model (schedmodels.aifo) for every count and free value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from p4src.pipeline import NUM_QUEUES, SchedMode

REPO = Path(__file__).resolve().parent.parent
TNA_DIR = REPO / "p4src" / "tna"
PROGRAM = "masque_pifo_tna"
SOURCE = TNA_DIR / f"{PROGRAM}.p4"
BUILD = TNA_DIR / "build"
P4INFO = BUILD / f"{PROGRAM}.p4info.txtpb"

#: What the ingress tells the egress in the bridged header.
BRIDGED_PACKET = 0
BRIDGED_WORKER = 1
#: Queue-depth workers: their EtherType (IEEE local experimental) and phases.
ETHERTYPE_DEPTH_REPORT = 0x88B5
WORKER_OUTBOUND = 0
WORKER_RETURNING = 1
#: The resubmit type of SP-PIFO's push-down pass.
RESUBMIT_PUSH_DOWN = 1
#: Egress queue depths are Tofino's 80-byte cells, kept in 16 bits.
CELL_BYTES = 80
CELLS_MAX = 0xFFFF
#: The largest per-queue depth AIFO and PACKS take: 8 queues' cells must sum in 16 bits.
MAX_QUEUE_DEPTH_CELLS = CELLS_MAX // NUM_QUEUES
#: AIFO's and PACKS's window on Tofino: 8 ranks, not the v1model program's 20
#: (RANK_WINDOW): 8 slot registers fit Tofino 1's stateful ALUs beside SP-PIFO's 8 bounds
#: and the depth registers within 12 stages (docs/tofino.md, "What differs").
TNA_RANK_WINDOW = 8
#: Table sizes the Tofino program shrank so that each lookup fits one stage (the v1model
#: program's sizes are in p4src/include/controls.p4).
TNA_TABLE_SIZES = {"flow_rank": 2048, "quic_forward": 8192, "quic_dcids": 8192}
#: admission_thresholds' size.
ADMISSION_TABLE_SIZE = 1024


@dataclass(frozen=True)
class ThresholdEntry:
    """One entry of `admission_thresholds`: for `mode`, free cells in [free_lo, free_hi]
    and `below` window ranks under the packet's, bit q of `admit` says whether queue q's
    share admits the packet (qid 7 is the highest priority)."""

    mode: int
    free_lo: int
    free_hi: int
    below: int
    admit: int

    def action_params(self) -> dict[str, int]:
        """The `set_admit` action's parameters by name."""
        return {"admit_mask": self.admit}


def _check(depth: int, burst_pct: int, window: int, max_depth: int) -> None:
    if not 1 <= depth <= max_depth:
        raise ValueError(f"queue depth must be 1..{max_depth} cells, got {depth}")
    if not 0 <= burst_pct < 100:
        raise ValueError(f"k (burst_pct) must be 0..99 percent, got {burst_pct}")
    if not 1 <= window <= TNA_RANK_WINDOW:
        raise ValueError(f"the window must hold 1..{TNA_RANK_WINDOW} ranks, got {window}")


def _ceil_div(num: int, den: int) -> int:
    return -(-num // den)


def _ranges(mode: int, capacity: int, window: int,
            thresholds_at: Callable[[int], tuple[int, ...]]) -> list[ThresholdEntry]:
    """For each count 0..window, merge the free values 0..capacity with the same admission
    mask into ranges; a mask of 0 needs no entry (the default action admits nothing)."""
    per_free = [thresholds_at(free) for free in range(capacity + 1)]
    entries: list[ThresholdEntry] = []
    for below in range(window + 1):
        masks = [sum(1 << q for q, t in enumerate(ts) if below < t) for ts in per_free]
        lo = 0
        for free in range(1, capacity + 2):
            if free == capacity + 1 or masks[free] != masks[lo]:
                if masks[lo]:
                    entries.append(ThresholdEntry(mode, lo, free - 1, below, masks[lo]))
                lo = free
    return entries


def aifo_threshold(free: int, depth: int, burst_pct: int, window: int = TNA_RANK_WINDOW) -> int:
    """How many window ranks below a packet's AIFO still admits with `free` of `depth`
    cells free: window + 1 (all) while the queue holds at most k percent, else the least
    t with count < t  <=>  count . (100 - k) . C < 100 . W . free."""
    held = depth - free
    if free == 0:
        return 0  # full: the data plane drops before it looks
    if 100 * held <= burst_pct * depth:
        return window + 1
    return min(window + 1, _ceil_div(100 * window * free, (100 - burst_pct) * depth))


def packs_thresholds(free: int, depth: int, burst_pct: int,
                     window: int = TNA_RANK_WINDOW) -> tuple[int, ...]:
    """Per qid, how many window ranks below a packet's PACKS's queue still admits with
    `free` cells free of 8 . depth: queue of priority rank p (0 = qid 7) admits when
    count . (100 - k) . n . C < 100 . W . (p + 1) . free."""
    n = NUM_QUEUES
    capacity = n * depth
    out = [0] * n
    for qid in range(n):
        share = n - qid  # qid 7 -> share 1 (p = 0) ... qid 0 -> share 8
        out[qid] = min(window + 1, _ceil_div(100 * window * share * free,
                                             (100 - burst_pct) * n * capacity))
    return tuple(out)


def aifo_threshold_entries(depth: int, burst_pct: int,
                           window: int = TNA_RANK_WINDOW) -> list[ThresholdEntry]:
    """`admission_thresholds` entries for AIFO over one FIFO (queue 0) of `depth` cells."""
    _check(depth, burst_pct, window, CELLS_MAX)
    return _ranges(int(SchedMode.AIFO), depth, window,
                   lambda free: (aifo_threshold(free, depth, burst_pct, window),)
                   + (0,) * (NUM_QUEUES - 1))


def packs_threshold_entries(depth: int, burst_pct: int,
                            window: int = TNA_RANK_WINDOW) -> list[ThresholdEntry]:
    """`admission_thresholds` entries for PACKS over 8 queues of `depth` cells each."""
    _check(depth, burst_pct, window, MAX_QUEUE_DEPTH_CELLS)
    return _ranges(int(SchedMode.PACKS), NUM_QUEUES * depth, window,
                   lambda free: packs_thresholds(free, depth, burst_pct, window))


def lookup(entries: Sequence[ThresholdEntry], mode: int, free: int, below: int) -> int:
    """What the table answers for (mode, free, below): the admission mask; the default
    action admits nothing."""
    for entry in entries:
        if (entry.mode == mode and entry.below == below
                and entry.free_lo <= free <= entry.free_hi):
            return entry.admit
    return 0


def _sat_sub(a: int, b: int) -> int:
    return max(0, a - b)


def aifo_decision(below: int, held: int, depth: int,
                  entries: Sequence[ThresholdEntry]) -> tuple[str, int | None]:
    """The TNA program's AIFO step (choose_queue): ('queue', 0), ('full', None) or
    ('admission', None). `held` is queue 0's depth in cells, as a worker stored it."""
    free = _sat_sub(depth, min(held, CELLS_MAX))
    admit = lookup(entries, int(SchedMode.AIFO), free, below)
    if free == 0:
        return "full", None
    if admit & 1:
        return "queue", 0
    return "admission", None


def packs_decision(below: int, held_by_qid: Sequence[int], depth: int,
                   entries: Sequence[ThresholdEntry]) -> tuple[str, int | None]:
    """The TNA program's PACKS step: ('queue', qid), ('full', None) or ('admission', None).
    `held_by_qid[q]` is queue q's depth in cells (qid 7 is the highest priority); the
    egress sums them (saturating) for the worker, each queue's register says whether it
    has room (depth < the configured depth)."""
    held = [min(h, CELLS_MAX) for h in held_by_qid]
    total = min(sum(held), CELLS_MAX)  # saturating adds
    free = _sat_sub(NUM_QUEUES * depth, total)
    admit = lookup(entries, int(SchedMode.PACKS), free, below)
    for qid in reversed(range(NUM_QUEUES)):
        if held[qid] < depth and admit >> qid & 1:
            return "queue", qid
    if free == 0:
        return "full", None
    return "admission", None
