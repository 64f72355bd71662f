"""The seed thesis's Tables 3 and 4: the model router combined with each network scheduler.

A front-end namespace and a back-end namespace joined by the emulated link (5 Mbit/s,
50 ms one way, 0.5% loss each way, as in the traffic-class experiment). The back-end
(`hostagent.llm.router.serving`) routes every request with the DQN router and answers
when the emulated model is done; the front-end issues task-tagged requests (by default
all at once, as the seed; Poisson with --rate), OpenBookQA as the high-priority
(real-time) class. For every stream scheduler at both ends and the TLS/TCP baselines:
the mean reward (normalized accuracy when the answer arrived within the end-to-end
deadline, else 0), per class, and the model mix.

    python -m experiments.llm_router [--requests 90] [--rate 0] [--router dqn] [--out results/llm]

The seed's Tables 3 and 4 in their shape (rows: network schedulers and TLS/TCP; columns:
large model only, OPT-1.3B only, the policy; ours beside the seed's):

    python -m experiments.llm_router --routers large-only,medium-only,dqn --workload stable
    python -m experiments.llm_router --routers large-only,medium-only,dqn --workload unpredictable
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clikit import exit_on_signals
from hostagent.llm.router.serving import ROUTERS, TASK_CLASS
from hostagent.llm.router.tasks import HIGH_PRIORITY_TASK, SIZES, TASKS
from hostagent.llm.workload import CLASSES
from hostagent.schedulers import SCHEDULERS
from netlab import capabilities, names
from netlab.linkemu import parse_spec
from netlab.netns_link import EmulatedLink
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
QUIC_VARIANTS = ("rr", "fcfs", "edf", "abs", "ml")
TCP_VARIANTS = ("tcp-n", "tcp-1")
ALL_VARIANTS = QUIC_VARIANTS + TCP_VARIANTS
FRONTEND_NS, BACKEND_NS = names.netns("rfe"), names.netns("rbe")
FRONTEND_ADDR, BACKEND_ADDR = "10.251.2.1/30", "10.251.2.2/30"
PORT = 4433
#: --workload: burst (all --requests at once, or Poisson at --rate), stable (Poisson at
#: --rate, default 8/s) or unpredictable (--duration s of random phases)
WORKLOADS = ("burst", "stable", "unpredictable")
STABLE_RATE = 8.0
#: the seed's row for each of our variants, and its column for each of our routers
SEED_ROWS = {"rr": "QUIC-RR", "fcfs": "QUIC-FCFS", "edf": "QUIC-EDF", "abs": "QUIC-ABS",
             "ml": "QUIC-ML", "tcp-n": "TLS/TCP", "tcp-1": "TLS/TCP 1 conn"}
SEED_COLUMNS = {"large-only": "OPT-2.7B only", "medium-only": "OPT-1.3B only",
                "dqn": "policy"}
#: the seed thesis's Tables 3 (stable) and 4 (unpredictable): mean score per row and column
SEED_TABLES: dict[str, dict[str, tuple[float, float, float]]] = {
    "stable": {"QUIC-RR": (0.20, 0.25, 0.42), "QUIC-FCFS": (0.19, 0.24, 0.36),
               "QUIC-EDF": (0.21, 0.37, 0.52), "QUIC-ABS": (0.20, 0.35, 0.49),
               "QUIC-ML": (0.21, 0.29, 0.45), "TLS/TCP": (0.20, 0.24, 0.41),
               "TLS/TCP 1 conn": (0.18, 0.22, 0.31)},
    "unpredictable": {"QUIC-RR": (0.19, 0.54, 0.42), "QUIC-FCFS": (0.17, 0.53, 0.36),
                      "QUIC-EDF": (0.19, 0.64, 0.48), "QUIC-ABS": (0.18, 0.62, 0.46),
                      "QUIC-ML": (0.19, 0.57, 0.44), "TLS/TCP": (0.18, 0.54, 0.41),
                      "TLS/TCP 1 conn": (0.16, 0.51, 0.35)}}


def run_variant(variant: str, requests: int, rate: float, seed: int, router: str,
                timeout: float, unpredictable_s: float = 0.0) -> list[dict[str, Any]]:
    """One variant: per request, the front-end's result joined with the back-end's choice."""
    transport, scheduler = ("quic", variant) if variant in SCHEDULERS else (variant, "fcfs")
    ip = BACKEND_ADDR.split("/")[0]
    with tempfile.TemporaryDirectory(prefix="mprt-") as tmp:
        backend_log = Path(tmp) / "backend.json"
        backend = NamespaceProcess(BACKEND_NS, python_module(
            "hostagent.llm.router.serving", "backend", "--listen", f"{ip}:{PORT}",
            "--scheduler", scheduler, "--router", router, "--log", str(backend_log)),
            ready=r"serving QUIC", name="router back-end")
        with backend:
            front = NamespaceProcess(FRONTEND_NS, python_module(
                "hostagent.llm.router.serving", "frontend", "--connect", f"{ip}:{PORT}",
                "--transport", transport, "--scheduler", scheduler, "--requests",
                str(requests), "--rate", str(rate), "--unpredictable", str(unpredictable_s),
                "--seed", str(seed), "--timeout", str(timeout), "--json", "-"),
                capture_stdout=True, name="router front-end")
            front.start()
            out = front.communicate(timeout=timeout + requests / max(rate, 1)
                                    + unpredictable_s + 30)
            if front.poll() != 0:
                raise ProcessFailed(f"front-end failed ({front.poll()}): "
                                    f"{' | '.join(list(front.output)[-5:])}")
        served = {r["index"]: r for r in json.loads(backend_log.read_text())}
    rows = []
    for result in json.loads(out):
        s = served.get(result["index"])
        row = {**result, "task": None, "size": None, "completed": False, "reward": 0.0}
        if s is not None:
            row.update(task=s["task"], size=s["size"], completed=s["completed"])
            if s["completed"] and result["on_time"]:
                row["reward"] = TASKS[s["task"]].rewards[s["size"]]
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean reward overall and per class, on-time shares per class, the model mix."""
    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    out: dict[str, Any] = {"requests": len(rows), "reward": mean([r["reward"] for r in rows])}
    for cls in CLASSES:
        mine = [r for r in rows if r["traffic_class"] == cls.name]
        out[f"reward_{cls.name}"] = mean([r["reward"] for r in mine])
        out[f"on_time_{cls.name}"] = mean([float(r["on_time"]) for r in mine])
    hp = [r for r in rows if r["task"] == HIGH_PRIORITY_TASK]
    out["reward_hp"] = mean([r["reward"] for r in hp])
    routed = [r for r in rows if r["size"] is not None]
    out["mix"] = {size: sum(r["size"] == i for r in routed) / max(len(routed), 1)
                  for i, size in enumerate(SIZES)}
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def format_tables(summaries: dict[str, dict[str, Any]]) -> str:
    """Table 3 (mean reward per scheduler, per class) and Table 4 (high-priority class)."""
    classes = [c.name for c in CLASSES]
    head = (f"{'variant':<8} {'reward':>7} " + " ".join(f"{c:>9}" for c in classes)
            + f" {'S/M/L mix':>12} {'seed':>5}")
    lines = ["Table 3: mean reward (normalized accuracy if the answer was on time), per class",
             head, "-" * len(head)]
    for v, s in summaries.items():
        mix = "/".join(f"{100 * s['mix'][size]:.0f}" for size in SIZES)
        lines.append(f"{v:<8} {s['reward']:>7.3f} "
                     + " ".join(f"{s['reward_' + c] or 0:>9.3f}" for c in classes)
                     + f" {mix:>12} {'n/a':>5}")
    head = (f"{'variant':<8} {'OBQA reward':>11} " + " ".join(f"{c + ' ok':>12}" for c in classes)
            + f" {'seed':>5}")
    lines += ["", f"Table 4: high-priority class ({TASKS[HIGH_PRIORITY_TASK].name}, real-time) "
              "and on-time shares", head, "-" * len(head)]
    for v, s in summaries.items():
        lines.append(f"{v:<8} {s['reward_hp'] or 0:>11.3f} "
                     + " ".join(f"{_pct(s['on_time_' + c]):>12}" for c in classes)
                     + f" {'n/a':>5}")
    return "\n".join(lines)


def format_seed_table(summaries: dict[str, dict[str, dict[str, Any]]], workload: str) -> str:
    """The seed's Table 3 (stable) or 4 (unpredictable) in its shape: mean score per
    scheduler (row) and router (column), ours / the seed's ("n/a" where it has none)."""
    routers = list(summaries)
    variants = list(next(iter(summaries.values())))
    seed = SEED_TABLES.get(workload, {})
    number = {"stable": "3", "unpredictable": "4"}.get(workload, "3/4")
    head = f"{'':<16} " + " ".join(
        f"{SEED_COLUMNS.get(r, r) + ' (' + r + ')':>28}" for r in routers)
    lines = [f"Table {number} ({workload} workload): mean score, ours / seed", head,
             "-" * len(head)]
    for v in variants:
        row = SEED_ROWS.get(v, v)
        cells = []
        for r in routers:
            ours = summaries[r][v]["reward"]
            col = list(SEED_COLUMNS).index(r) if r in SEED_COLUMNS else None
            theirs = (f"{seed[row][col]:.2f}" if row in seed and col is not None else "n/a")
            cells.append(f"{'-' if ours is None else f'{ours:.2f}'} / {theirs}")
        lines.append(f"{row:<16} " + " ".join(f"{c:>28}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.llm_router",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=90)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s, Poisson (default 0: one burst, as the seed)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--router", default="dqn", choices=ROUTERS)
    parser.add_argument("--routers", help="comma-separated routers, each with every variant "
                        "(default: --router); several print the seed's Table 3/4 shape")
    parser.add_argument("--workload", choices=WORKLOADS, default="burst",
                        help=f"burst (default: --requests at once, or at --rate), stable "
                        f"(Poisson at --rate, default {STABLE_RATE:g}/s) or unpredictable "
                        "(--duration s of Poisson phases)")
    parser.add_argument("--duration", type=float, default=40.0,
                        help="seconds of the unpredictable workload (default 40)")
    parser.add_argument("--link", default=DEFAULT_LINK)
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS))
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", default="results/llm")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS]
    if bad:
        parser.error(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(ALL_VARIANTS)}")
    try:
        link = parse_spec(args.link)
    except ValueError as exc:
        parser.error(f"--link: {exc}")
    if not capabilities.netns().available:
        print(f"llm_router: {capabilities.netns().detail}", file=sys.stderr)
        return 1
    routers = [r.strip() for r in (args.routers or args.router).split(",") if r.strip()]
    bad = [r for r in routers if r not in ROUTERS]
    if bad or not routers:
        parser.error(f"unknown router(s) {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(ROUTERS)}")
    rate = args.rate or (STABLE_RATE if args.workload == "stable" else 0.0)
    unpredictable_s = args.duration if args.workload == "unpredictable" else 0.0
    if unpredictable_s <= 0 and args.workload == "unpredictable":
        parser.error("--duration must be > 0")
    if not capabilities.netns().available:
        print(f"llm_router: {capabilities.netns().detail}", file=sys.stderr)
        return 1
    started = time.monotonic()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {r: {} for r in routers}
    summaries: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in routers}
    load = (f"{args.duration:g} s of the unpredictable workload" if unpredictable_s else
            f"{args.requests} requests at {rate:g}/s")
    with EmulatedLink(FRONTEND_NS, FRONTEND_ADDR, BACKEND_NS, BACKEND_ADDR, link, link,
                      prefer=args.emulation, static_arp=True) as em:
        print(f"link {args.link} each way ({em.mode}); {load}, seed {args.seed}, "
              f"router(s) {', '.join(routers)}; classes: "
              + ", ".join(f"{t} {c.name}" for t, c in TASK_CLASS.items()), flush=True)
        runs = [(r, v) for r in routers for v in variants]
        for n, (router, variant) in enumerate(runs, start=1):
            t0 = time.monotonic()
            print(f"[{n}/{len(runs)}] {router}, {variant} ...", end=" ", flush=True)
            raw[router][variant] = run_variant(variant, args.requests, rate, args.seed,
                                               router, args.timeout, unpredictable_s)
            summaries[router][variant] = summarize(raw[router][variant])
            print(f"{time.monotonic() - t0:.1f} s, mean reward "
                  f"{summaries[router][variant]['reward']:.3f}", flush=True)
    for router in routers:
        print(f"\nrouter {router}")
        print(format_tables(summaries[router]))
    if len(routers) > 1:
        print()
        print(format_seed_table(summaries, args.workload))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = (f"llm_router_{args.router}" if args.routers is None and args.workload == "burst"
            else f"llm_router_{args.workload}")
    path = out / f"{name}.json"
    meta = {**vars(args), "rate": rate, "emulation": em.mode,
            "seed_table": SEED_TABLES.get(args.workload)}
    single = routers[0] if len(routers) == 1 else None
    path.write_text(json.dumps({"meta": meta,
                                "summary": summaries[single] if single else summaries,
                                "requests": raw[single] if single else raw}, indent=1))
    print(f"wrote {path} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
