"""The LLM model router (DQN): (a) stable workload, (b) unpredictable workload with and
without network delay, the seed's Table 2 in its shape, (c) the router with each network
scheduler over the emulated link: the seed's Tables 3 (stable) and 4 (unpredictable) in
their shape.

(a) and (b) run on the emulator in simulated time (seconds); (c) needs root and network
namespaces and takes a few minutes; without them it prints a skip line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.results import Row
from netlab import capabilities


def main(argv: list[str] | None = None) -> list[Row]:
    """Print (a), (b), (b') and (c); the headline rows of (a) and (b') for the README."""
    try:
        from hostagent.llm.router.dqn import DELAY_AWARE_CHECKPOINT, load_router
    except ImportError as exc:  # torch is in the test extras
        print(f"skipped: the DQN router needs torch ({exc})")
        return []
    from hostagent.llm.router.evaluate import (
        SEED_AVAILABILITY,
        baselines,
        format_stable,
        format_table2,
        format_unpredictable,
        stable_table,
        table2,
        unpredictable_table,
    )
    from hostagent.llm.router.workloads import wan_delay

    dqn = load_router()
    routers = {"dqn": dqn, **baselines()}
    t0 = time.monotonic()
    print("(a) stable workload (Poisson, 40 s per rate, seed 1): mean reward per request")
    stable = stable_table(routers)
    print(format_stable(stable))
    print(SEED_AVAILABILITY)
    print(f"({time.monotonic() - t0:.1f} s)\n", flush=True)

    t0 = time.monotonic()
    print("(b) unpredictable workload (3 seeds x 600 s): share of 20-request windows whose "
          "mean reward is at least; dqn/static: over the best static router")
    print(format_unpredictable(unpredictable_table(routers)))
    print(f"({time.monotonic() - t0:.1f} s)\n", flush=True)

    t0 = time.monotonic()
    print("Table 2: the first unpredictable workload (seed 1, 600 s), windows of 20 requests")
    t2 = table2(routers)
    print(format_table2(t2))
    print(f"({time.monotonic() - t0:.1f} s)\n", flush=True)

    t0 = time.monotonic()
    aware = load_router(DELAY_AWARE_CHECKPOINT)
    print("(b') beyond the seed: the same, each request spending wan_delay() in the network "
          "(eats into its deadline); dqn is blind to it, dqn+delay sees it")
    delayed = unpredictable_table({"dqn": dqn, "dqn+delay": aware, **baselines()},
                                  delay=wan_delay)
    print(format_unpredictable(delayed, router="dqn+delay", seed=False))
    print(f"({time.monotonic() - t0:.1f} s)\n", flush=True)

    top = 8.0 if 8.0 in stable else max(stable)
    rows = [Row("LLM model router (DQN, emulator)", f"(a) mean reward at {top:g} requests/s: "
                "dqn / large-only", f"{stable[top]['dqn']:.3f} / {stable[top]['large-only']:.3f}",
                "n/a here (seed Table 2)", "emulator"),
            Row("LLM model router (DQN, emulator)", "(b') mean reward with network delay: "
                "blind dqn / delay-aware dqn", f"{delayed['dqn']['mean']:.3f} / "
                f"{delayed['dqn+delay']['mean']:.3f}", "-", "emulator"),
            Row("LLM model router (DQN, emulator)", "Table 2: windows of 20 with mean reward "
                ">= 0.96, policy / OPT-6.7B / OPT-1.3B",
                f"{t2['dqn']['0.96']:.0f} / {t2['large-only']['0.96']:.0f} / "
                f"{t2['medium-only']['0.96']:.0f} of {t2['dqn']['windows']:.0f}",
                "1264 / 307 / 0 (of n/a)", "emulator")]
    if not capabilities.netns().available:
        print(f"(c) skipped: {capabilities.netns().detail}")
        return rows
    from experiments import llm_router

    print("(c) the router with each network scheduler over the emulated link "
          "(seed Tables 3 and 4)", flush=True)
    if argv:
        llm_router.main(list(argv))
        return rows
    for workload in ("stable", "unpredictable"):
        if llm_router.main(["--routers", "large-only,medium-only,dqn", "--workload",
                            workload]) != 0:
            continue
        s = json.loads((Path("results/llm") / f"llm_router_{workload}.json").read_text())
        summary = s["summary"]
        cells = {v: " / ".join(f"{summary[r][v]['reward']:.2f}"
                               for r in ("large-only", "medium-only", "dqn"))
                 for v in ("edf", "tcp-1")}
        seed = llm_router.SEED_TABLES[workload]
        rows.append(Row("LLM router + network schedulers (5 Mbit/s, 0.5% loss)",
                        f"Table {3 if workload == 'stable' else 4} ({workload}): mean score, "
                        "large-only / OPT-1.3B-only / policy; QUIC-EDF; TLS/TCP 1 conn",
                        f"{cells['edf']}; {cells['tcp-1']}",
                        " / ".join(f"{x:.2f}" for x in seed["QUIC-EDF"]) + "; "
                        + " / ".join(f"{x:.2f}" for x in seed["TLS/TCP 1 conn"])
                        + " (large = OPT-2.7B)", "namespaces"))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
