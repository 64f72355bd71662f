"""The switch-scheduling experiment: the pure-Python reference on hand-computed traces,
the SP-PIFO paper's qualitative anchor, the receiver-view inversion estimator, the two
workloads (uniform, pfabric) and their completion times, the report, and short live runs
on the built-in target (root)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netlab.names import remains
from schedmodels.portsim import (
    DISCIPLINES,
    Packet,
    StrictRange,
    anchor,
    even_strict_ranges,
    simulate,
)
from tests.conftest import TaggedRun

RATE = 8000  # bit/s: a 1000-byte packet takes exactly 1 s


def trace(*arrivals: tuple[float, int]) -> list[Packet]:
    """1000-byte packets from (time, rank) pairs."""
    return [Packet(t, r, 1000) for t, r in arrivals]


# p0 goes out at once; p1..p3 wait; at t=1 the buffer holds ranks 3, 1, 4.
SMALL = trace((0.0, 5), (0.1, 3), (0.2, 1), (0.3, 4))
# The SP-PIFO walk-through of the tests below (2 queues).
WALK = trace((0.0, 5), (0.1, 3), (0.2, 6), (0.3, 1), (0.4, 2))


def test_fifo_small_trace() -> None:
    r = simulate(SMALL, RATE, "fifo")
    assert r.departures == [0, 1, 2, 3]
    assert [round(t, 9) for t in r.starts] == [0.0, 1.0, 2.0, 3.0]
    assert r.inversions == 1  # p1 (rank 3) leaves while p2 (rank 1) waits
    assert r.drops == 0
    assert [round(d, 9) for rank in (5, 3, 1, 4) for d in r.per_rank[rank].delays] == \
        [0.0, 0.9, 1.8, 2.7]


def test_pifo_small_trace() -> None:
    r = simulate(SMALL, RATE, "pifo")
    assert r.departures == [0, 2, 1, 3]
    assert r.inversions == 0
    assert round(r.per_rank[1].delays[0], 9) == 0.8
    assert round(r.per_rank[3].delays[0], 9) == 1.9


def test_fifo_drop_tail() -> None:
    r = simulate(SMALL, RATE, "fifo", fifo_depth=2)
    assert r.drops == 1 and r.per_rank[4].dropped == 1  # p3 finds p1, p2 waiting
    assert r.departures == [0, 1, 2]
    assert r.inversions == 1
    assert r.summary()["per_rank"]["4"]["drop_rate"] == 1.0


def test_pifo_fifo_among_equal_ranks() -> None:
    r = simulate(trace((0.0, 9), (0.1, 2), (0.2, 2), (0.3, 1), (0.4, 2)), RATE, "pifo")
    assert r.departures == [0, 3, 1, 2, 4]
    assert r.inversions == 0


def test_sppifo_walk_through() -> None:
    # bounds [0,0] -> p0 r5: q1 [0,5] -> p1 r3: q0 [3,5] -> p2 r6: q1 [3,6]
    # -> p3 r1: push-down by 2, q0 [1,4] -> p4 r2: q0 [2,4].  q0 = p1 p3 p4, q1 = p2.
    r = simulate(WALK, RATE, "sppifo", queues=2)
    assert r.bounds == [2, 4]
    assert r.departures == [0, 1, 3, 4, 2]
    assert r.inversions == 2  # p1 (rank 3) leaves before p3 (1) and p4 (2)
    fifo = simulate(WALK, RATE, "fifo", queues=2)
    assert fifo.inversions == 4  # p1 over p3, p4; p2 (6) over p3, p4
    assert simulate(WALK, RATE, "pifo", queues=2).departures == [0, 3, 4, 1, 2]


def test_strict_ranges() -> None:
    low_first = [StrictRange(0, 2, 0), StrictRange(3, 9, 1)]
    r = simulate(WALK, RATE, "strict", queues=2, strict=low_first)
    assert r.departures == [0, 3, 4, 1, 2]
    assert r.inversions == 0
    wide = [StrictRange(0, 3, 0), StrictRange(4, 9, 1)]
    r = simulate(WALK, RATE, "strict", queues=2, strict=wide)
    assert r.departures == [0, 1, 3, 4, 2]
    assert r.inversions == 2
    # an unmatched rank goes to the last (lowest-priority) queue
    assert simulate(WALK, RATE, "strict", queues=2).departures == [0, 1, 2, 3, 4]


def test_sppifo_full_queue_changes_no_bound() -> None:
    # 2 queues of 1 packet. p0 r5 leaves at once, bounds [0,5]; p1 r7 waits in q1 [0,7];
    # p2 r8 maps to q1, which is full: dropped, bounds stay [0,7]; p3 r7: q1 again, dropped.
    t = trace((0.0, 5), (0.1, 7), (0.2, 8), (0.3, 7))
    paper = simulate(t, RATE, "sppifo", queues=2, depth=1)
    assert paper.drops == 2 and paper.bounds == [0, 7]
    # the v1model switch: p2 has raised q1's bound to 8, so p3 (7) takes q0 and is kept
    switch = simulate(t, RATE, "sppifo", queues=2, depth=1, full_queue_moves_bounds=True)
    assert switch.drops == 1 and switch.bounds == [7, 8]
    assert switch.departures == [0, 3, 1]


def test_even_strict_ranges() -> None:
    ranges = even_strict_ranges(0, 100)
    assert len(ranges) == 8 and ranges[0].low == 0 and ranges[-1].high == 100
    assert all(a.high + 1 == b.low for a, b in zip(ranges, ranges[1:], strict=False))
    assert [r.queue for r in ranges] == list(range(8))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown discipline"):
        simulate(SMALL, RATE, "lifo")
    with pytest.raises(ValueError, match="outside"):
        simulate(SMALL, RATE, "strict", queues=2, strict=[StrictRange(0, 9, 5)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(0, 20), st.integers(64, 1500)),
                max_size=60),
       st.integers(1, 4))
def test_conservation_and_pifo_never_inverts(rows: list[tuple[float, int, int]],
                                             depth: int) -> None:
    t = [Packet(*row) for row in rows]
    for d in DISCIPLINES:
        r = simulate(t, 100_000, d, queues=4, depth=depth,
                     strict=even_strict_ranges(0, 20, 4))
        assert len(r.departures) + r.drops == len(t)
        assert sorted(set(r.departures)) == sorted(r.departures)
        if d == "pifo":
            assert r.inversions == 0


def test_paper_anchor_uniform_ranks() -> None:
    """SP-PIFO paper, uniform ranks 0-100, 8 queues: FIFO 864k vs SP-PIFO 262k (3.3x).
    Here (open-loop Poisson at load 1.2, 8 x 10 packets): SP-PIFO well below FIFO, PIFO 0."""
    results = anchor(packets=20_000, load=1.2, seed=7)
    fifo, sp = results["fifo"].inversions, results["sppifo"].inversions
    ratio = fifo / sp
    print(f"anchor: FIFO {fifo:,} vs SP-PIFO {sp:,} inversions = {ratio:.1f}x (paper 3.3x)")
    assert ratio > 3.0
    assert results["pifo"].inversions == 0
    assert results["fifo"].drops > 0  # the load is above 1


def test_receiver_view_estimator() -> None:
    from experiments.switch_scheduling import receiver_inversions

    # (seq, rank, send time, receive time), in receive order; base delay 0.01 s, so a
    # packet left the bottleneck 0.01 s before it was received.
    # a (rank 5) leaves at 0.99; b (rank 1, sent 0.5) leaves after it: one inversion.
    # c (rank 3) was sent at 1.5, after a left: it does not count against a.
    rows = [(0, 0, 0.0, 0.01), (1, 5, 0.2, 1.0), (2, 1, 0.5, 2.0), (3, 3, 1.5, 3.0)]
    assert receiver_inversions(rows) == 1
    # b first, then a, and c sent after a left: nothing inverted
    rows = [(0, 0, 0.0, 0.01), (2, 1, 0.5, 1.0), (1, 5, 0.2, 2.0), (3, 3, 2.5, 3.0)]
    assert receiver_inversions(rows) == 0
    # c sent before a left (1.5 < 1.99) and leaving after it, with a smaller rank: one
    rows = [(0, 0, 0.0, 0.01), (2, 1, 0.5, 1.0), (1, 5, 0.2, 2.0), (3, 3, 1.5, 3.0)]
    assert receiver_inversions(rows) == 1


def test_aifo_window_can_start_from_an_earlier_run() -> None:
    # A burst of 12 rank-50 packets into a FIFO of 8. With the window full of zeros (as
    # the switch's registers start) each looks above every remembered rank and is refused
    # once the queue holds more than k . C; a window that an earlier run left full of
    # rank 90 makes the first ones look urgent: only the full queue drops (no admission).
    t = trace(*[(0.0, 50)] * 12)
    fresh = simulate(t, RATE, "aifo", fifo_depth=8)
    assert (fresh.drops, fresh.admission_drops) == (6, 6)
    later = simulate(t, RATE, "aifo", fifo_depth=8, initial_window=[90] * 20)
    assert (later.drops, later.admission_drops) == (3, 0)
    # a shorter window is padded with zeros in front, as the registers start
    padded = simulate(t, RATE, "aifo", fifo_depth=8, initial_window=[90] * 5)
    assert (padded.drops, padded.admission_drops) == (4, 4)


# -- workloads ---------------------------------------------------------------------------------
def test_log_levels_are_exact_for_small_values_and_cover_the_largest() -> None:
    from experiments.sched_workloads import level_of, log_levels

    edges = log_levels(750)
    assert len(edges) <= 64 and edges[0] == 1 and edges[-1] == 750
    assert edges[:12] == list(range(1, 13))
    assert all(a < b for a, b in zip(edges, edges[1:], strict=False))
    assert [level_of(edges, v) for v in (1, 2, 12)] == [0, 1, 11]
    assert level_of(edges, 750) == len(edges) - 1 and level_of(edges, 10**6) == len(edges) - 1
    assert edges[level_of(edges, 400)] <= 400 < edges[level_of(edges, 400) + 1]
    assert log_levels(10) == list(range(1, 11))
    with pytest.raises(ValueError):
        log_levels(0)


def test_web_search_sizes_follow_the_cdf() -> None:
    import random

    from experiments.sched_workloads import WEB_SEARCH_CDF, sample_size

    rng = random.Random(3)
    sizes = sorted(sample_size(rng) for _ in range(20000))
    assert sizes[0] >= 0 and sizes[-1] <= WEB_SEARCH_CDF[-1][0]
    # 53% of flows are below 80 KB, 70% below 1 MB (DCTCP's web search)
    assert 0.51 < sum(s < 80_000 for s in sizes) / len(sizes) < 0.55
    assert 0.68 < sum(s < 1_000_000 for s in sizes) / len(sizes) < 0.72


def test_pfabric_ranks_are_the_quantized_remaining_size() -> None:
    from experiments.sched_workloads import level_of, pfabric_workload

    work = pfabric_workload(6, 0.8, 5e6, 1042, 1000, seed=2)
    edges = [t.rank for t in work.tags]
    assert [t.dscp for t in work.tags] == list(range(len(edges))) and len(edges) <= 64
    assert work.flows and any(f.small for f in work.flows.values())
    by_flow: dict[int, list] = {}
    for p in work.packets:
        by_flow.setdefault(p.flow, []).append(p)
    assert [p.time for p in work.packets] == sorted(p.time for p in work.packets)
    for fid, packets in by_flow.items():
        plan = work.flows[fid]
        assert len(packets) == plan.packets or plan.truncated
        for j, p in enumerate(packets):
            level = level_of(edges, plan.packets - j)
            assert p.tag == level and p.rank == edges[level]
        assert plan.truncated or packets[-1].rank == 1
    # offered load: packets over the run's capacity, about 0.8
    capacity = 6 * 5e6 / (1042 * 8)
    assert 0.4 < len(work.packets) / capacity < 1.3


def test_uniform_workload_uses_ranks_0_to_100_on_source_ports() -> None:
    from experiments.sched_workloads import UNIFORM_PORT_BASE, uniform_workload

    work = uniform_workload(4, 1.3, 5e6, 1042, seed=1)
    assert [t.rank for t in work.tags] == list(range(101))
    assert {t.src_port for t in work.tags} == set(range(UNIFORM_PORT_BASE,
                                                          UNIFORM_PORT_BASE + 101))
    assert {p.rank for p in work.packets} <= set(range(101))
    assert len({p.rank for p in work.packets}) > 90
    assert work.packets[0].time > 0.0 and work.packets[-1].time < 4


def test_flow_completion_needs_every_packet() -> None:
    from experiments.sched_workloads import (
        FlowPlan,
        Planned,
        Tag,
        Workload,
        fct_summary,
        flow_completion,
    )

    work = Workload("pfabric", [Tag(1, 0)], [
        Planned(0.0, 0, 2, flow=0), Planned(0.1, 0, 1, flow=0),   # small, both arrive
        Planned(0.2, 0, 1, flow=1),                                # small, lost
        Planned(0.3, 0, 1, flow=2)], {                             # large, arrives
            0: FlowPlan(0.0, 2, 20_000), 1: FlowPlan(0.2, 1, 10_000),
            2: FlowPlan(0.3, 1, 500_000)})
    sent = [0.0, 0.1, 0.2, 0.3]
    fct = flow_completion(work, sent, {0: 0.05, 1: 0.4, 3: 0.31})
    assert fct == pytest.approx({0: 0.4, 2: 0.01})
    summary = fct_summary(work, fct)
    assert summary["small_flows"] == 2 and summary["small_completed"] == 1
    assert summary["small_mean_ms"] == pytest.approx(400)
    assert summary["large_completed"] == 1


def test_strict_ranges_of_the_pfabric_levels_cover_every_rank() -> None:
    from experiments.sched_workloads import pfabric_workload
    from experiments.switch_scheduling import strict_ranges
    from p4src.pipeline import RANK_MAX

    ranges = strict_ranges(pfabric_workload(2, 0.8, 5e6, 1042, 1000, seed=1))
    assert len(ranges) == 8 and ranges[0].low == 0 and ranges[-1].high == RANK_MAX
    assert all(a.high + 1 == b.low for a, b in zip(ranges, ranges[1:], strict=False))
    assert [r.queue for r in ranges] == list(range(8))


def test_report_checks_agreement_and_prints_published_ratios(
        capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.sched_workloads import uniform_workload
    from experiments.switch_scheduling import strict_ranges
    from experiments.switch_scheduling_report import print_tables

    work = uniform_workload(0.01, 1.0, 5e6, 1042, seed=1)

    def mode(measured: int, ref: int, drops: int) -> dict:
        return {"received": 10, "inversions_measured": measured,
                "drops": {"total": drops, "admission": 0, "queue_full": 0, "tail": drops},
                "simulated": {"reference": {"inversions": ref, "drops": drops,
                                            "admission_drops": 0}},
                "agreement": {"inversions": (measured - ref) / ref, "drops": 0.0},
                "per_rank": {str(t.rank): {"sent": 1, "received": 1, "drop_rate": 0.0,
                                           "reference_drop_rate": 0.0} for t in work.tags}}

    results = {"fifo": mode(330, 320, 10), "sppifo": mode(100, 100, 10),
               "packs": mode(50, 40, 4)}
    out = print_tables(work, results, strict_ranges(work), 0.10)
    assert out["agreement"]["modes"]["fifo"]["within_bound"]
    assert not out["agreement"]["modes"]["packs"]["within_bound"]  # +25%
    assert not out["agreement"]["all_within"]
    ratios = {r["name"]: r for r in out["ratios"]}
    assert ratios["fifo / sppifo inversions"]["measured"] == pytest.approx(3.3)
    assert ratios["fifo / sppifo inversions"]["published"] == 3.3
    assert ratios["packs / sppifo drops"]["measured"] == pytest.approx(0.4)
    assert "aifo / packs inversions" not in ratios  # AIFO did not run
    printed = capsys.readouterr().out
    assert "within 10% for every mode: NO" in printed and "864k" in printed


REPO = Path(__file__).resolve().parent.parent


def live_run(tmp_path: Path, tagged_run: TaggedRun, *args: str) -> dict:
    out = tmp_path / "switch"
    run = subprocess.run(
        [sys.executable, "-m", "experiments.switch_scheduling", "--seconds", "3",
         "--out", str(out), *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env=tagged_run.env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert remains(tagged_run.tag) == []
    workload = args[args.index("--workload") + 1] if "--workload" in args else "uniform"
    assert (out / f"switch_scheduling_{workload}.png").exists()
    return json.loads((out / f"switch_scheduling_{workload}.json").read_text())


@pytest.mark.root
@pytest.mark.slow
def test_live_short_run_uniform(tmp_path: Path, tagged_run: TaggedRun) -> None:
    from experiments.switch_scheduling import MODES

    data = live_run(tmp_path, tagged_run)
    assert list(data["modes"]) == list(MODES)
    for mode in MODES:
        assert set(data["modes"][mode]["per_rank"]) == {str(r) for r in range(101)}
    top = data["modes"]
    p50 = {m: top[m]["per_rank"]["0"]["latency_ms_p50"] for m in MODES}
    assert p50["sppifo"] < p50["fifo"] and p50["packs"] < p50["fifo"]
    # AIFO and PACKS drop by admission in the switch, before the traffic manager would:
    # their occupancy estimate follows the queues (egress runs at dequeue)
    for mode in ("aifo", "packs"):
        drops = top[mode]["drops"]
        assert drops["admission"] > 0
        assert drops["tail"] <= 0.01 * top[mode]["sent"]
    # FIFO, STRICT and SP-PIFO never refuse a packet in the program
    assert all(top[m]["drops"]["admission"] == 0 for m in ("fifo", "strict", "sppifo"))
    assert {r["name"] for r in data["ratios"]} >= {"fifo / sppifo inversions",
                                                    "sppifo / packs inversions"}
    assert set(data["agreement"]["modes"]) == set(MODES)


@pytest.mark.root
@pytest.mark.slow
def test_live_short_run_pfabric(tmp_path: Path, tagged_run: TaggedRun) -> None:
    data = live_run(tmp_path, tagged_run, "--workload", "pfabric", "--modes", "fifo,packs")
    assert data["meta"]["small_flows"] > 0
    for mode in ("fifo", "packs"):
        fct = data["modes"][mode]["fct"]
        assert set(fct) == {"measured", "reference", "pifo"}
        assert fct["measured"]["small_flows"] == data["meta"]["small_flows"]
        assert 0 < fct["measured"]["small_completed"] <= fct["measured"]["small_flows"]
    dscps = {t["dscp"] for t in data["meta"]["tags"]}
    assert dscps == set(range(len(dscps))) and len(dscps) <= 64
