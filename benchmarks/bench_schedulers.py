"""PIFO-ABS (binary heap) against sorted-list ABS: stream-management overhead.

Three PIFOs: the seed's base ABS (a sorted list whose insertion point is found
by scanning it from the head), the same list with binary-search insertion
(`bisect`), and the binary heap of PIFO-ABS.

The seed thesis's workload: every stream carries 10 KB (about 9 packets of
1,150 bytes of payload) at one of 10 priority levels. The scheduler inserts each
stream once, then, per packet, extracts the most urgent stream and re-inserts it
while it has data left. Only those queue operations are timed. At 1,000 and
10,000 streams the whole workload runs; at 100,000 the extract/re-insert
cycles are capped (the per-operation cost is what is compared).

Seed anchor (1,000 streams × 10 KB, 10 levels): 9.87 ms PIFO vs 35.2 ms sorted list.
Goal: the heap's per-operation cost grows as O(log n), and it is at least 10×
cheaper than the sorted list at 10,000 streams.

Then, where network namespaces are available (root), the seed's end-to-end run
(`experiments.pifo_echo`): RTT per priority group and the management time measured in
the run, sorted list against heap.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from benchmarks.results import Row
from clikit import no_options
from hostagent.schedulers import HeapPifo, LinearScanPifo, SortedListPifo

PACKETS_PER_STREAM = 9  # 10 KB in 1,150-byte payloads
LEVELS = 10
MAX_CYCLES = 100_000
SIZES = (1_000, 10_000, 100_000)
IMPLS = (("linear-scan", LinearScanPifo), ("bisect-list", SortedListPifo),
         ("pifo-heap", HeapPifo))
#: the linear scan is O(n) Python steps per insert: at 100,000 streams its run would take
#: hours, so it is timed up to 10,000
LINEAR_MAX = 10_000


def run(factory: Callable[[], object], n: int, seed: int = 1) -> dict[str, float]:
    """Time insert, extract and re-insert for `n` streams; seconds per phase and op counts."""
    rng = random.Random(seed)
    pifo = factory()
    ranks = [(rng.randrange(LEVELS), i) for i in range(n)]
    left = [PACKETS_PER_STREAM] * n
    start = time.perf_counter()
    for i in range(n):
        pifo.push(i, ranks[i])  # type: ignore[attr-defined]
    inserted = time.perf_counter()
    extract = reinsert = 0.0
    cycles = 0
    budget = min(n * PACKETS_PER_STREAM, MAX_CYCLES)
    while cycles < budget and len(pifo):  # type: ignore[arg-type]
        t0 = time.perf_counter()
        i = pifo.pop()  # type: ignore[attr-defined]
        t1 = time.perf_counter()
        left[i] -= 1
        if left[i]:
            pifo.push(i, ranks[i])  # type: ignore[attr-defined]
        t2 = time.perf_counter()
        extract += t1 - t0
        reinsert += t2 - t1
        cycles += 1
    return {"insert": inserted - start, "extract": extract, "reinsert": reinsert,
            "inserts": n, "cycles": cycles, "complete": cycles == n * PACKETS_PER_STREAM}


def main() -> list[Row]:
    """Print the tables; the headline rows for the README."""
    print(__doc__.strip().splitlines()[0])
    header = (f"{'streams':>8} {'impl':<12} {'insert us':>10} {'extract us':>11} "
              f"{'reinsert us':>12} {'total ms':>10} {'workload':>9}")
    print(header)
    print("-" * len(header))
    per_op: dict[tuple[str, int], float] = {}
    totals: dict[tuple[str, int], float] = {}
    for n in SIZES:
        for name, factory in IMPLS:
            if name == "linear-scan" and n > LINEAR_MAX:
                continue
            r = run(factory, n)
            total = r["insert"] + r["extract"] + r["reinsert"]
            totals[(name, n)] = total
            per_op[(name, n)] = total / (r["inserts"] + 2 * r["cycles"])
            print(f"{n:>8} {name:<12} {1e6 * r['insert'] / r['inserts']:>10.3f} "
                  f"{1e6 * r['extract'] / r['cycles']:>11.3f} "
                  f"{1e6 * r['reinsert'] / r['cycles']:>12.3f} {1e3 * total:>10.2f} "
                  f"{'full' if r['complete'] else 'capped':>9}")
    print()
    print(f"{'streams':>8} {'scan us/op':>11} {'bisect us/op':>13} {'heap us/op':>11} "
          f"{'scan/heap':>10} {'bisect/heap':>12} {'heap vs 1k':>11}")
    for n in SIZES:
        heap = per_op[("pifo-heap", n)]
        scan = per_op.get(("linear-scan", n))
        print(f"{n:>8} {'-' if scan is None else f'{1e6 * scan:.3f}':>11} "
              f"{1e6 * per_op[('bisect-list', n)]:>13.3f} {1e6 * heap:>11.3f} "
              f"{'-' if scan is None else f'{scan / heap:.1f}x':>10} "
              f"{per_op[('bisect-list', n)] / heap:>11.1f}x "
              f"{heap / per_op[('pifo-heap', SIZES[0])]:>10.2f}x")
    seed_ratio = 35.2 / 9.87
    ms = {name: 1e3 * totals[(name, 1_000)] for name, _ in IMPLS}
    ours = ms["linear-scan"] / ms["pifo-heap"]
    print(f"\nseed (1,000 streams): sorted list 35.2 ms, PIFO 9.87 ms, ratio {seed_ratio:.1f}x; "
          f"ours: linear scan {ms['linear-scan']:.2f} ms, bisect {ms['bisect-list']:.2f} ms, "
          f"heap {ms['pifo-heap']:.2f} ms, scan/heap {ours:.1f}x")
    goal = per_op[("linear-scan", 10_000)] / per_op[("pifo-heap", 10_000)]
    print(f"goal: heap >= 10x cheaper than the seed's sorted list at 10,000 streams: "
          f"{goal:.1f}x ({'met' if goal >= 10 else 'NOT met'})")
    return [*micro_rows(ms, ours, seed_ratio, goal), *end_to_end_rows()]


def micro_rows(ms: dict[str, float], ours: float, seed_ratio: float, goal: float) -> list[Row]:
    """The micro-benchmark's headline rows."""
    return [Row("PIFO vs sorted-list ABS",
                "1,000 streams x 10 KB, 10 levels: management time, linear-scan list / "
                "bisect list / heap",
                f"{ms['linear-scan']:.2f} / {ms['bisect-list']:.2f} / {ms['pifo-heap']:.2f} ms "
                f"(scan/heap {ours:.1f}x)",
                f"35.2 (list) vs 9.87 ms (PIFO), {seed_ratio:.1f}x", "end-host"),
            Row("PIFO vs sorted-list ABS",
                "10,000 streams: linear-scan list / heap, per operation",
                f"{goal:.1f}x", "goal >= 10x", "end-host")]


E2E_OUT = "results/pifo"


def end_to_end_rows() -> list[Row]:
    """The seed's end-to-end run (experiments.pifo_echo: 1,000 streams x 10 KB to the echo
    target over 5 Mbit/s, 50 ms, 0.5% loss, sorted list against heap), where network
    namespaces are available; its rows."""
    import json
    from pathlib import Path

    from experiments import pifo_echo
    from netlab import capabilities

    if not capabilities.netns().available:
        print(f"PIFO end to end: skipped ({capabilities.netns().detail})")
        return []
    if pifo_echo.main(["--out", E2E_OUT]) != 0:
        return []
    summary = json.loads((Path(E2E_OUT) / "pifo_echo.json").read_text())["summary"]
    base, pifo = summary["abs"], summary["pifo-abs"]
    groups = sorted(set(base["groups"]) & set(pifo["groups"]), key=int)
    if not groups:
        return []
    first, last = groups[0], groups[-1]

    def p90(s: dict, group: str) -> str:
        return f"{s['groups'][group]['p90']:.1f}"

    what = "PIFO end to end (1,000 streams x 10 KB, 5 Mbit/s, 50 ms, 0.5% loss)"
    return [Row(what, f"RTT p90 s, priority {first} / {last}: sorted list; heap",
                f"{p90(base, first)} / {p90(base, last)}; {p90(pifo, first)} / "
                f"{p90(pifo, last)}", "lower tails with PIFO (Figure 2.10)", "namespaces"),
            Row(what, "management time in the run, ms: sorted list / heap (PIFO ops; whole "
                "scheduling hook)",
                f"{statistics.median(base['pifo_ms']):.1f} / "
                f"{statistics.median(pifo['pifo_ms']):.1f} "
                f"({statistics.median(base['hook_ms']):.0f} / "
                f"{statistics.median(pifo['hook_ms']):.0f})",
                "35.2 / 9.87 ms", "namespaces")]


if __name__ == "__main__":
    no_options("python -m benchmarks.bench_schedulers", __doc__)
    main()
