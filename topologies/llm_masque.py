"""The LLM traffic-class experiment through the MASQUE proxy and the P4 switch, fast path
off and on.

The Mininet topology of `masque_proxy.py` (built-in target, mp-controller, mp-proxy
on `proxy`), with the LLM back-end on target host `t1` and the front-end on
`client`; the client's access link is impaired (default 5 Mbit/s, 50 ms, 0.5%
loss each way, as in `llm_classes.py`). The front-end's QUIC connection runs inside
one CONNECT-UDP tunnel (`python -m hostagent.llm.frontend --transport masque`):
with the fast path off the proxy relays every packet; with it on the switch
carries them, each tagged with the DSCP of its most urgent class, which the proxy
registers with the controller as a rank. Per variant: the per-class table of
`llm_classes.py` (on time, latency quartiles) and the proxy's CPU seconds per MB.

    sudo .venv/bin/python -m topologies.llm_masque [--schedulers edf] [--fastpath both] \\
        [--requests 30] [--out results/llm]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from topologies import capabilities
from topologies.linkemu import format_spec, parse_spec

PROG = "llm_masque"
DEFAULT_LINK = "rate=5mbit,delay=50ms,loss=0.5%"
BACKEND_PORT = 4443  # mp-target has 4433 (QUIC) and 4434 (UDP) on t1
FASTPATH = {"off": (False,), "on": (True,), "both": (False, True)}
SEED_RESULT = "seed thesis (direct, no proxy): EDF and ML best; ABS and ML 100% on time for " \
    "real-time"


class _Outcome:
    """A request result read back from the front-end's JSON."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.traffic_class = row["traffic_class"]
        self.latency = row["latency"]
        self.on_time = row["on_time"]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    from hostagent.schedulers import SCHEDULERS

    parser = argparse.ArgumentParser(prog=f"python -m topologies.{PROG}",
                                     description=__doc__.split("\n\n")[0].replace("\n", " "),
                                     epilog=SEED_RESULT)
    parser.add_argument("--schedulers", default="edf", metavar="LIST",
                        help="comma-separated stream schedulers of the front-end and back-end "
                        f"(default edf; from {', '.join(SCHEDULERS)})")
    parser.add_argument("--fastpath", choices=list(FASTPATH), default="both",
                        help="run each scheduler with the fast path off, on, or both (default)")
    parser.add_argument("--requests", type=int, default=30, help="requests per run (30)")
    parser.add_argument("--seed", type=int, default=1, help="request mix seed (1)")
    parser.add_argument("--link", default=DEFAULT_LINK,
                        help=f"client access link impairment, each way (default {DEFAULT_LINK!r})")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds the front-end waits for its answers (60)")
    parser.add_argument("--out", default="results/llm", help="folder for JSON and PNG")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run every (scheduler, fast path) variant; print the tables, write JSON and PNG."""
    from hostagent.llm.report import box_plot, format_table, summarize
    from hostagent.schedulers import SCHEDULERS

    parser = build_parser()
    args = parser.parse_args(argv)
    schedulers = [v.strip() for v in args.schedulers.split(",") if v.strip()]
    bad = [v for v in schedulers if v not in SCHEDULERS]
    if bad or not schedulers:
        parser.error(f"--schedulers: unknown {', '.join(bad) or '(none)'}; choose from "
                     f"{', '.join(SCHEDULERS)}")
    if args.requests < 1:
        parser.error("--requests must be >= 1")
    try:
        link = parse_spec(args.link)
    except ValueError as exc:
        parser.error(f"--link: {exc}")
    for cap in (capabilities.root(), capabilities.mininet()):
        if not cap.available:
            print(f"{PROG}: {cap.detail}", file=sys.stderr)
            return 1
    from topologies.masque_proxy import QUIC_PORT, MasqueTopology

    plan = [(s, fp) for s in schedulers for fp in FASTPATH[args.fastpath]]
    runs: dict[str, dict[str, Any]] = {}
    costs: dict[str, dict[str, Any]] = {}
    raw: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    how = "plain"
    print(f"{args.requests} requests (seed {args.seed}) through mp-proxy and the switch; client "
          f"link {args.link} each way", flush=True)
    for n, (scheduler, fastpath) in enumerate(plan, start=1):
        label = f"{scheduler}, fast path {'on' if fastpath else 'off'}"
        t0 = time.monotonic()
        print(f"[{n}/{len(plan)}] {label} ...", end=" ", flush=True)
        with MasqueTopology(link=link) as topo:
            how = topo.link_how
            backend = topo.hosts[2]
            topo.start_daemon("llm back-end", backend.name, [
                sys.executable, "-m", "hostagent.llm.backend", "--listen",
                f"{backend.ip}:{BACKEND_PORT}", "--scheduler", scheduler], r"serving QUIC")
            cpu = topo.cpu_seconds("mp-proxy")
            out = topo.run_on("client", [
                sys.executable, "-m", "hostagent.llm.frontend", "--transport", "masque",
                "--proxy", f"{topo.proxy.ip}:{QUIC_PORT}", "--connect",
                f"{backend.ip}:{BACKEND_PORT}", "--scheduler", scheduler, "--requests",
                str(args.requests), "--seed", str(args.seed), "--timeout", str(args.timeout),
                "--json", "-", *(["--fastpath"] if fastpath else [])],
                timeout=args.timeout + 90, label="llm front-end")
            cpu = topo.cpu_seconds("mp-proxy") - cpu
            for line in topo.last_stderr:
                if "slow path" in line:
                    print(f"\n{PROG}: warning: {line}", file=sys.stderr)
        raw[label] = json.loads(out)
        runs[label] = summarize(_Outcome(r) for r in raw[label])
        mb = sum(r["received"] for r in raw[label]) / 1e6
        costs[label] = {"mb_answered": mb, "proxy_cpu_s": cpu,
                        "proxy_cpu_s_per_mb": cpu / mb if mb else None}
        rt = runs[label]["realtime"]["on_time"]
        print(f"{time.monotonic() - t0:.1f} s, real-time on time "
              f"{'-' if rt is None else f'{100 * rt:.0f}%'}", flush=True)
    print()
    print(format_table(runs))
    print()
    header = f"{'variant':<24} {'MB answered':>11} {'proxy CPU s':>11} {'CPU s/MB':>9}"
    print(header)
    print("-" * len(header))
    for label, c in costs.items():
        per_mb = "-" if c["proxy_cpu_s_per_mb"] is None else f"{c['proxy_cpu_s_per_mb']:.3f}"
        print(f"{label:<24} {c['mb_answered']:>11.2f} {c['proxy_cpu_s']:>11.2f} {per_mb:>9}")
    print(f"\n{SEED_RESULT}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": PROG, "link": format_spec(link), "emulation": how, "target": "soft",
            "requests": args.requests, "seed": args.seed, "machine": platform.node(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seed_result": SEED_RESULT}
    summary = {v: {c: {k: val for k, val in row.items() if k != "latencies"}
                   for c, row in s.items()} for v, s in runs.items()}
    (out_dir / f"{PROG}.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "proxy": costs, "requests": raw}, indent=1))
    png = box_plot(runs, out_dir / f"{PROG}.png",
                   f"LLM classes through mp-proxy and the P4 switch over {args.link} "
                   f"({args.requests} requests, {how})")
    print(f"wrote {out_dir / (PROG + '.json')} and {png} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
