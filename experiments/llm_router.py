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
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_variant(variant: str, requests: int, rate: float, seed: int, router: str,
                timeout: float) -> list[dict[str, Any]]:
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
                str(requests), "--rate", str(rate), "--seed", str(seed),
                "--timeout", str(timeout), "--json", "-"),
                capture_stdout=True, name="router front-end")
            front.start()
            out = front.communicate(timeout=timeout + requests / max(rate, 1) + 30)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.llm_router",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=90)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s, Poisson (default 0: one burst, as the seed)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--router", default="dqn", choices=ROUTERS)
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
    started = time.monotonic()
    raw: dict[str, list[dict[str, Any]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    with EmulatedLink(FRONTEND_NS, FRONTEND_ADDR, BACKEND_NS, BACKEND_ADDR, link, link,
                      prefer=args.emulation, static_arp=True) as em:
        print(f"link {args.link} each way ({em.mode}); {args.requests} requests at "
              f"{args.rate}/s, seed {args.seed}, router {args.router}; classes: "
              + ", ".join(f"{t} {c.name}" for t, c in TASK_CLASS.items()), flush=True)
        for n, variant in enumerate(variants, start=1):
            t0 = time.monotonic()
            print(f"[{n}/{len(variants)}] {variant} ...", end=" ", flush=True)
            raw[variant] = run_variant(variant, args.requests, args.rate, args.seed,
                                       args.router, args.timeout)
            summaries[variant] = summarize(raw[variant])
            print(f"{time.monotonic() - t0:.1f} s, mean reward "
                  f"{summaries[variant]['reward']:.3f}", flush=True)
    print()
    print(format_tables(summaries))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"llm_router_{args.router}.json"
    path.write_text(json.dumps({"meta": {**vars(args), "emulation": em.mode},
                                "summary": summaries, "requests": raw}, indent=1))
    print(f"wrote {path} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
