"""The LLM model router (DQN): (a) stable workload, (b) unpredictable workload with and
without network delay, (c) the router with each network scheduler over the emulated link.

(a) and (b) run on the emulator in simulated time (seconds); (c) needs root and network
namespaces and takes a few minutes; without them it prints a skip line.
"""

from __future__ import annotations

import sys
import time

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
        format_unpredictable,
        stable_table,
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
                f"{delayed['dqn+delay']['mean']:.3f}", "-", "emulator")]
    if not capabilities.netns().available:
        print(f"(c) skipped: {capabilities.netns().detail}")
        return rows
    from experiments import llm_router

    print("(c) the router with each network scheduler over the emulated link "
          "(seed Tables 3 and 4)", flush=True)
    llm_router.main(list(argv) if argv else [])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
