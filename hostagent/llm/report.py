"""Per-class summaries, tables and box plots of LLM request results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from hostagent.llm.workload import CLASSES
from schedmodels.stats import quartiles


class Outcome(Protocol):
    traffic_class: str

    @property
    def latency(self) -> float | None: ...

    @property
    def on_time(self) -> bool: ...


def summarize(results: Iterable[Outcome]) -> dict[str, dict[str, Any]]:
    """Per class: request count, share on time, count finished, latency quartiles (s)."""
    results = list(results)
    summary: dict[str, dict[str, Any]] = {}
    for cls in CLASSES:
        mine = [r for r in results if r.traffic_class == cls.name]
        latencies = sorted(r.latency for r in mine if r.latency is not None)
        summary[cls.name] = {
            "requests": len(mine),
            "on_time": sum(r.on_time for r in mine) / len(mine) if mine else None,
            "finished": len(latencies),
            "latency_quartiles": quartiles(latencies),
            "latencies": latencies,
        }
    return summary


def format_table(runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A text table: one row per (variant, class)."""
    header = (f"{'variant':<20} {'class':<9} {'reqs':>4} {'on time':>8} {'done':>5} "
              f"{'p25 s':>7} {'p50 s':>7} {'p75 s':>7}")
    lines = [header, "-" * len(header)]
    for variant, summary in runs.items():
        for cls_name, row in summary.items():
            q = row["latency_quartiles"]
            on_time = "-" if row["on_time"] is None else f"{100 * row['on_time']:.0f}%"
            qs = ("-", "-", "-") if q is None else tuple(f"{v:.3f}" for v in q)
            lines.append(f"{variant:<20} {cls_name:<9} {row['requests']:>4} {on_time:>8} "
                         f"{row['finished']:>5} {qs[0]:>7} {qs[1]:>7} {qs[2]:>7}")
    return "\n".join(lines)


def box_plot(runs: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path,
             title: str) -> Path:
    """Latency box plots per class, one group per variant, deadlines drawn as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(runs)
    fig, axes = plt.subplots(1, len(CLASSES), figsize=(4.5 * len(CLASSES), 4.5), sharey=False)
    for ax, cls in zip(axes, CLASSES, strict=True):
        data = [runs[v][cls.name]["latencies"] or [float("nan")] for v in variants]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(variants) + 1), variants, rotation=45, ha="right")
        ax.axhline(cls.deadline_s, color="red", linestyle="--", linewidth=1,
                   label=f"deadline {cls.deadline_s:g} s")
        ax.set_title(f"{cls.name} ({cls.size // 1024} KB)")
        ax.set_ylabel("latency (s)")
        ax.legend(loc="upper left", fontsize=8)
        for i, v in enumerate(variants, start=1):
            share = runs[v][cls.name]["on_time"]
            if share is not None:
                ax.annotate(f"{100 * share:.0f}%", (i, 0), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
