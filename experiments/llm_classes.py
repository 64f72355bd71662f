"""The seed thesis's LLM traffic-class experiment over an emulated link.

A front-end namespace and a back-end namespace joined by a link of 5 Mbit/s,
50 ms one way and 0.5% loss in each direction (netem where the kernel has it,
the userspace emulator otherwise). 90 requests, classes drawn uniformly with a
fixed seed: real-time (8 KB, 1 s, priority 0), free-tier (8 KB, 2 s) and long
(102.4 KB, 7 s), issued in one burst. Every stream scheduler runs at both
ends, then the TLS-over-TCP baselines with one connection per request and with
a single connection. Per class: the share of requests answered within the
deadline and latency quartiles; a table, a JSON file and a box plot.

    python -m experiments.llm_classes [--requests 90] [--out results/llm]

Seed result to compare with: EDF and ML best; ABS and ML 100% on time for real-time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from clikit import exit_on_signals
from hostagent.llm.report import box_plot, format_table, summarize
from hostagent.llm.workload import CLASSES
from hostagent.schedulers import SCHEDULERS
from netlab import capabilities, names
from netlab.linkemu import format_spec, parse_spec
from netlab.netns_link import EmulatedLink
from netlab.nsprocess import NamespaceProcess, ProcessFailed, python_module

DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
QUIC_VARIANTS = ("rr", "fcfs", "edf", "abs", "pifo-abs", "ml")
TCP_VARIANTS = ("tcp-n", "tcp-1")
ALL_VARIANTS = QUIC_VARIANTS + TCP_VARIANTS
FRONTEND_NS, BACKEND_NS = names.netns("fe"), names.netns("be")
FRONTEND_ADDR, BACKEND_ADDR = "10.251.1.1/30", "10.251.1.2/30"
PORT = 4433
SEED_RESULT = "seed thesis: EDF and ML best; ABS and ML 100% on time for real-time"


class _Outcome:
    """A request result read back from the front-end's JSON."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.traffic_class = row["traffic_class"]
        self.latency = row["latency"]
        self.on_time = row["on_time"]


def run_variant(variant: str, requests: int, seed: int, timeout: float) -> list[dict[str, Any]]:
    """One variant: a back-end in its namespace, the front-end in the other; raw results."""
    transport, scheduler = ("quic", variant) if variant in SCHEDULERS else (variant, "fcfs")
    backend_ip = BACKEND_ADDR.split("/")[0]
    with NamespaceProcess(BACKEND_NS, python_module(
            "hostagent.llm.backend", "--listen", f"{backend_ip}:{PORT}",
            "--scheduler", scheduler), ready=r"serving QUIC", name="llm back-end"):
        front = NamespaceProcess(FRONTEND_NS, python_module(
            "hostagent.llm.frontend", "--connect", f"{backend_ip}:{PORT}",
            "--transport", transport, "--scheduler", scheduler, "--requests", str(requests),
            "--seed", str(seed), "--timeout", str(timeout), "--json", "-"),
            capture_stdout=True, name="llm front-end")
        front.start()
        out = front.communicate(timeout=timeout + 30)
        if front.poll() != 0:
            raise ProcessFailed(f"front-end failed ({front.poll()}): "
                                f"{' | '.join(list(front.output)[-5:])}")
    return json.loads(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.llm_classes", description=__doc__.split("\n\n")[0],
        epilog=SEED_RESULT)
    parser.add_argument("--requests", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help="impairment of each direction (default %(default)r)")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS),
                        help=f"comma-separated subset of {','.join(ALL_VARIANTS)}")
    parser.add_argument("--emulation", default="auto", choices=["auto", "netem", "userspace"])
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a variant may take (default 60)")
    parser.add_argument("--out", default="results/llm", help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(ALL_VARIANTS)}")
    try:
        link = parse_spec(args.link)
    except ValueError as exc:
        parser.error(f"--link: {exc}")
    if not capabilities.netns().available:
        print(f"llm_classes: {capabilities.netns().detail}", file=sys.stderr)
        return 1

    runs: dict[str, dict[str, dict[str, Any]]] = {}
    raw: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    with EmulatedLink(FRONTEND_NS, FRONTEND_ADDR, BACKEND_NS, BACKEND_ADDR, link, link,
                      prefer=args.emulation, static_arp=True) as em:
        print(f"link {args.link} each way, emulated with {em.mode}; "
              f"{args.requests} requests, seed {args.seed}", flush=True)
        for n, variant in enumerate(variants, start=1):
            t0 = time.monotonic()
            print(f"[{n}/{len(variants)}] {variant} ...", end=" ", flush=True)
            raw[variant] = run_variant(variant, args.requests, args.seed, args.timeout)
            runs[variant] = summarize(_Outcome(r) for r in raw[variant])
            rt = runs[variant]["realtime"]["on_time"]
            print(f"{time.monotonic() - t0:.1f} s, real-time on time "
                  f"{'-' if rt is None else f'{100 * rt:.0f}%'}", flush=True)
    print()
    print(format_table(runs))
    print(f"\n{SEED_RESULT}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": "llm_classes", "link": format_spec(link), "emulation": em.mode,
            "requests": args.requests, "seed": args.seed, "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "classes": [c.__dict__ for c in CLASSES], "seed_result": SEED_RESULT}
    summary = {v: {c: {k: val for k, val in row.items() if k != "latencies"}
                   for c, row in s.items()} for v, s in runs.items()}
    (out / "llm_classes.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "requests": raw}, indent=1))
    png = box_plot(runs, out / "llm_classes.png",
                   f"LLM classes over {args.link} ({args.requests} requests, {em.mode})")
    print(f"wrote {out / 'llm_classes.json'} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    exit_on_signals()  # a kill unwinds the namespaces and processes
    sys.exit(main())
