"""Tables, ratios beside the published ones, and the plot of the switch-scheduling
experiment (experiments.switch_scheduling), from its per-mode results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.sched_workloads import Workload
from schedmodels.portsim import StrictRange

#: (numerator mode, denominator mode, measure, published ratio, where it is from)
PUBLISHED: tuple[tuple[str, str, str, float, str], ...] = (
    ("fifo", "sppifo", "inversions", 3.3,
     "SP-PIFO (NSDI'20) repository data: uniform ranks 0-100, 8 queues, FIFO 864k / "
     "SP-PIFO 262k"),
    ("sppifo", "packs", "inversions", 7.0, "PACKS (NSDI'25): up to 7x fewer than SP-PIFO"),
    ("aifo", "packs", "inversions", 15.0, "PACKS (NSDI'25): up to 15x fewer than AIFO"),
    ("packs", "sppifo", "drops", 0.4, "PACKS (NSDI'25): 60% fewer drops than SP-PIFO"),
)
#: SP-PIFO repository, web search with pFabric ranks at load 0.8: small flows' mean FCT
FCT_PUBLISHED = (0.706 / 0.530, "SP-PIFO repository, web search, load 0.8: SP-PIFO "
                 "0.706 ms / PIFO 0.530 ms small-flow mean FCT")


def _value(r: dict[str, Any], measure: str, side: str) -> float:
    ref = r["simulated"]["reference"]
    if measure == "inversions":
        return r["inversions_measured"] if side == "measured" else ref["inversions"]
    return r["drops"]["total"] if side == "measured" else ref["drops"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(x: float | None, spec: str = ".2f", suffix: str = "x") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def _ms(x: float | None) -> str:
    return _fmt(x, ".1f", "")


def ratios(work: Workload, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each published ratio whose two modes ran: ours measured, ours on the reference, and
    the published one."""
    rows = []
    for a, b, measure, published, source in PUBLISHED:
        if a in results and b in results:
            rows.append({"name": f"{a} / {b} {measure}",
                         "measured": _ratio(_value(results[a], measure, "measured"),
                                            _value(results[b], measure, "measured")),
                         "reference": _ratio(_value(results[a], measure, "reference"),
                                             _value(results[b], measure, "reference")),
                         "published": published, "source": source})
    sp = results.get("sppifo", {}).get("fct")
    if sp:
        pifo = sp["pifo"]["small_mean_ms"]
        rows.append({"name": "sppifo / pifo small-flow mean FCT (PIFO: reference)",
                     "measured": _ratio(sp["measured"]["small_mean_ms"], pifo),
                     "reference": _ratio(sp["reference"]["small_mean_ms"], pifo),
                     "published": FCT_PUBLISHED[0], "source": FCT_PUBLISHED[1]})
    return rows


def band_drops(work: Workload, r: dict[str, Any], band: StrictRange) -> tuple[float, float]:
    """(measured, reference) drop rate of the ranks in `band`."""
    sent = dropped = ref_dropped = 0.0
    for tag in work.tags:
        if band.low <= tag.rank <= band.high:
            row = r["per_rank"][str(tag.rank)]
            sent += row["sent"]
            dropped += row["sent"] - row["received"]
            ref_dropped += row["reference_drop_rate"] * row["sent"]
    return (dropped / sent, ref_dropped / sent) if sent else (0.0, 0.0)


def print_tables(work: Workload, results: dict[str, dict[str, Any]],
                 ranges: Sequence[StrictRange], bound: float) -> dict[str, Any]:
    """The inversion and drop table, drops per rank band, FCTs (pfabric) and the ratios;
    returns the agreement verdicts and the ratios for the JSON."""
    modes = list(results)
    print()
    header = (f"{'mode':<7} {'delivered':>9} {'inversions':>11} {'reference':>10} {'diff':>7} "
              f"{'drops (adm/full/tail)':>24} {'reference (adm/tail)':>22}")
    print(header)
    print("-" * len(header))
    verdict = {}
    for m in modes:
        r = results[m]
        ref = r["simulated"]["reference"]
        diff = r["agreement"]["inversions"]
        ok = diff is not None and abs(diff) <= bound or (
            diff is None and r["inversions_measured"] == 0)
        verdict[m] = {"inversions_diff": diff, "within_bound": ok,
                      "drops_diff": r["agreement"]["drops"]}
        d = r["drops"]
        drops = f"{d['total']} ({d['admission']}/{d['queue_full']}/{d['tail']})"
        ref_drops = (f"{ref['drops']} ({ref['admission_drops']}/"
                     f"{ref['drops'] - ref['admission_drops']})")
        print(f"{m:<7} {r['received']:>9} {r['inversions_measured']:>11,} "
              f"{ref['inversions']:>10,} {_fmt(diff and 100 * diff, '+.1f', '%'):>7} "
              f"{drops:>24} {ref_drops:>22}")
    agree = all(v["within_bound"] for v in verdict.values())
    print(f"reference: the port model as the switch behaves (SP-PIFO: a packet a full queue "
          f"drops has moved the bounds;\nAIFO/PACKS: the switch's k, depth and rank window). "
          f"Measured and reference inversions agree within {100 * bound:.0f}% for every "
          f"mode: {'yes' if agree else 'NO'}")
    print("\ndrop rate per rank band, measured (reference):")
    print(f"{'ranks':<13} " + " ".join(f"{m:>15}" for m in modes))
    for band in ranges:
        label = f"{band.low}-{band.high}"
        cells = [band_drops(work, results[m], band) for m in modes]
        print(f"{label:<13} " + " ".join(f"{100 * a:>6.1f}% ({100 * b:>4.1f}%)"
                                          for a, b in cells))
    if any("fct" in results[m] for m in modes):
        print("\nsmall flows (< 100 KB): completion time, measured (reference)")
        print(f"{'mode':<7} {'complete':>10} {'mean ms':>18} {'p99 ms':>18}")
        for m in modes:
            f = results[m]["fct"]
            me, rf = f["measured"], f["reference"]
            mean = f"{_ms(me['small_mean_ms'])} ({_ms(rf['small_mean_ms'])})"
            p99 = f"{_ms(me['small_p99_ms'])} ({_ms(rf['small_p99_ms'])})"
            print(f"{m:<7} {me['small_completed']:>4}/{me['small_flows']:<5} {mean:>18} "
                  f"{p99:>18}")
        pifo = results[modes[0]]["fct"]["pifo"]
        print(f"{'PIFO':<7} {pifo['small_completed']:>4}/{pifo['small_flows']:<5} "
              f"{_fmt(pifo['small_mean_ms'], '.1f', ''):>18} "
              f"{_fmt(pifo['small_p99_ms'], '.1f', ''):>18} (reference only)")
    rows = ratios(work, results)
    if rows:
        print(f"\n{'ratio':<52} {'measured':>9} {'reference':>10} {'published':>10}")
        for row in rows:
            print(f"{row['name']:<52} {_fmt(row['measured']):>9} {_fmt(row['reference']):>10} "
                  f"{_fmt(row['published']):>10}")
        for row in rows:
            print(f"  published {row['name']}: {row['source']}")
    return {"agreement": {"bound": bound, "all_within": agree, "modes": verdict},
            "ratios": rows}


def plot(work: Workload, results: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Inversions per mode (measured beside the reference), drop rate per rank per mode,
    and latency per rank (uniform) or small-flow FCT per mode (pfabric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (inv, drops, third) = plt.subplots(1, 3, figsize=(17, 4.8))
    modes = list(results)
    x = range(len(modes))
    inv.bar([i - 0.2 for i in x], [results[m]["inversions_measured"] for m in modes],
            width=0.4, label="measured (receiver view)")
    inv.bar([i + 0.2 for i in x],
            [results[m]["simulated"]["reference"]["inversions"] for m in modes], width=0.4,
            label="reference on the send log")
    inv.set_xticks(list(x), modes)
    inv.set_yscale("symlog")
    inv.set_ylabel("rank inversions (symlog)")
    inv.set_title("inversions per mode")
    inv.legend(fontsize="small", loc="lower center", framealpha=0.9)
    ranks = [t.rank for t in work.tags]
    for i, m in enumerate(modes):
        rows = results[m]["per_rank"]
        color = f"C{i}"
        drops.plot(ranks, [100 * rows[str(k)]["drop_rate"] for k in ranks], color=color,
                   label=m)
        drops.plot(ranks, [100 * rows[str(k)]["reference_drop_rate"] for k in ranks],
                   color=color, linestyle=":")
    if work.name == "pfabric":
        drops.set_xscale("log")
    drops.set_xlabel("rank" + (" (remaining packets, level edge)" if work.name == "pfabric"
                               else ""))
    drops.set_ylabel("drop rate, % (dotted: reference)")
    drops.set_title("drops per rank")
    drops.legend(fontsize="small")
    if work.flows:
        mean = [results[m]["fct"]["measured"]["small_mean_ms"] or 0 for m in modes]
        p99 = [results[m]["fct"]["measured"]["small_p99_ms"] or 0 for m in modes]
        ref = [results[m]["fct"]["reference"]["small_mean_ms"] or 0 for m in modes]
        third.bar([i - 0.27 for i in x], mean, width=0.27, label="mean, measured")
        third.bar(list(x), ref, width=0.27, label="mean, reference")
        third.bar([i + 0.27 for i in x], p99, width=0.27, label="p99, measured")
        pifo = results[modes[0]]["fct"]["pifo"]["small_mean_ms"]
        if pifo:
            third.axhline(pifo, color="k", linestyle="--", label="PIFO mean (reference)")
        third.set_xticks(list(x), modes)
        third.set_yscale("log")
        third.set_ylabel("ms (log)")
        third.set_title("small flows (< 100 KB): completion time")
    else:
        for m in modes:
            rows = results[m]["per_rank"]
            xs = [k for k in ranks if rows[str(k)]["latency_ms_p50"] is not None]
            third.plot(xs, [rows[str(k)]["latency_ms_p50"] for k in xs], label=m)
        third.set_yscale("log")
        third.set_xlabel("rank (smaller is more urgent)")
        third.set_ylabel("one-way latency p50, ms (log)")
        third.set_title("latency per rank")
    third.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
